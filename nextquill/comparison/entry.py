"""The shared command line of the comparison's entry modules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from nextquill.comparison.methods import METHODS, MissingRun
from nextquill.config import ConfigError


def method_main(kind: str, run: Callable, argv: list[str] | None = None) -> int:
    from nextquill.stages._cli import quiet_telemetry

    parser = argparse.ArgumentParser(prog=f"python -m nextquill.comparison.{kind}")
    parser.add_argument("method", choices=sorted(n for n, m in METHODS.items() if m.kind == kind))
    parser.add_argument("--seed", type=int, default=None, help="training seed of this run (trained and derived)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".")
    args = parser.parse_args(argv)
    quiet_telemetry()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s compare {kind} %(levelname)s %(message)s")
    try:
        print(json.dumps(run(args.method, Path(args.root), Path(args.params), args.seed)))
    except (ConfigError, MissingRun, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
