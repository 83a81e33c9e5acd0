"""Comparison stage `derived`: a method built on another method's run: its adapter decoded another way, or used as θ_D.

    python -m nextquill.comparison.derived METHOD      # what `dvc repro comparison/dvc.yaml` runs per method
"""

from __future__ import annotations

import sys

from nextquill.comparison.entry import method_main
from nextquill.comparison.methods import execute
from nextquill.stages import effects, evaluate, train


def run(name: str, root, params_file) -> dict:
    return execute(name, root, params_file, {"effects": effects.run, "train": train.run, "evaluate": evaluate.run})


def main(argv: list[str] | None = None) -> int:
    return method_main("derived", run, argv)


if __name__ == "__main__":
    sys.exit(main())
