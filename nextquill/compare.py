"""The comparison: every method of the paper's table, trained and evaluated on the same data and decoding.

`comparison/dvc.yaml` runs each method as one DVC matrix stage through the entry module of its kind
(`nextquill.comparison.zero_shot`, `.trained`, `.derived`; cached: only methods whose inputs changed
re-run), then `nextquill.comparison.table`, which writes `comparison/results.{md,json}`. This command
runs one method by hand, whatever its kind, or the table:

    dvc repro comparison/dvc.yaml                 # all methods and seeds, then the table
    python -m nextquill.compare run sft           # one method by hand, at each of its seeds
    python -m nextquill.compare run sft --seed 43 # one run
    python -m nextquill.compare table
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from nextquill.comparison.methods import METHODS, MissingRun
from nextquill.config import ConfigError, load_params


def run_method(name: str, root: Path, params_file: Path, seed: int | None = None) -> list[dict]:
    """Run `name` at `seed`, or, when it trains and no seed is given, at each of its seeds (`compare.seeds` for
    `compare.methods`, `compare.reading_seeds` for the readings and derived methods)."""
    import importlib

    method = METHODS[name]
    module = importlib.import_module(f"nextquill.comparison.{method.kind}")
    if not method.seeded:
        return [module.run(name, root, params_file)]
    seeds = [seed] if seed is not None else list(load_params(params_file).compare.seeds_of(name))
    return [module.run(name, root, params_file, s) for s in seeds]


def main(argv: list[str] | None = None) -> int:
    from nextquill.comparison.table import write_table
    from nextquill.stages._cli import quiet_telemetry

    parser = argparse.ArgumentParser(prog="python -m nextquill.compare", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("method", nargs="?", choices=sorted(METHODS))
    parser.add_argument("--seed", type=int, default=None, help="one training seed (default: each of its seeds)")
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
            for result in run_method(args.method, root, params_file, args.seed):
                print(json.dumps(result))
        else:
            write_table(root, params)
            print((root / "comparison" / "results.md").read_text())
    except (ConfigError, MissingRun) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
