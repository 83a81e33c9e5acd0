"""The comparison: every method of the paper's table, trained and evaluated on the same data and decoding.

`comparison/dvc.yaml` runs each method as one DVC matrix stage through the entry module of its kind
(`nextquill.comparison.zero_shot`, `.trained`, `.derived`; cached: only methods whose inputs changed
re-run), then `nextquill.comparison.table`, which writes `comparison/results.{md,json}`. This command
runs one method by hand, whatever its kind, or the table:

    dvc repro comparison/dvc.yaml          # all methods, then the table
    python -m nextquill.compare run sft    # one method by hand
    python -m nextquill.compare table
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from nextquill.comparison.methods import METHODS, Method
from nextquill.config import ConfigError, load_params


def kind(method: Method) -> str:
    """The comparison stage (and entry module) that runs `method`."""
    if method.adapter_from or method.reference_from:
        return "derived"
    return "trained" if method.trains else "zero_shot"


def run_method(name: str, root: Path, params_file: Path) -> dict:
    import importlib

    module = importlib.import_module(f"nextquill.comparison.{kind(METHODS[name])}")
    return module.run(name, root, params_file)


def main(argv: list[str] | None = None) -> int:
    from nextquill.comparison.table import write_table
    from nextquill.stages._cli import quiet_telemetry

    parser = argparse.ArgumentParser(prog="python -m nextquill.compare", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("method", nargs="?", choices=sorted(METHODS))
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".")
    args = parser.parse_args(argv)
    quiet_telemetry()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s compare %(levelname)s %(message)s")
    root, params_file = Path(args.root), Path(args.params)
    try:
        params = load_params(params_file)
        if args.command == "run":
            if args.method is None:
                parser.error("run needs a method")
            print(json.dumps(run_method(args.method, root, params_file)))
        else:
            write_table(root, params)
            print((root / "comparison" / "results.md").read_text())
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
