"""The shared entry point of every stage: parse arguments, validate all parameters first, run, report."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nextquill.config import ConfigError, Params, load_params
from nextquill.paths import Paths

# Values verified (docs/setup.md) to switch every tool's telemetry off; a user's own setting wins.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",  # Prefect SDK and MLflow; MLflow honours only the literal "true"
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def quiet_telemetry() -> None:
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def stage_main(name: str, run: Callable[[Params, Paths], Any], argv: list[str] | None = None,
               user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run stage `name`; an exception in `user_errors` (bad input, not a bug) prints one line and exits 1."""
    parser = argparse.ArgumentParser(prog=f"python -m nextquill.stages.{name}")
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    parser.add_argument("--root", default=".", help="project root that stage paths are relative to")
    args = parser.parse_args(argv)
    quiet_telemetry()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    try:
        params = load_params(args.params)  # every section, so a typo anywhere fails before any work
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        result = run(params, Paths(Path(args.root)))
    except user_errors as err:
        print(f"error: {name}: {err}", file=sys.stderr)
        return 1
    logging.getLogger(name).info("done in %.1f s: %s", time.perf_counter() - start, result)
    return 0
