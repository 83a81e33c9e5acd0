"""Comparison stage `trained`: train one objective (its own data when it needs it), then evaluate; once per seed.

    python -m nextquill.comparison.trained METHOD --seed S   # what `dvc repro comparison/dvc.yaml` runs per run
"""

from __future__ import annotations

import sys

from nextquill.comparison.entry import method_main
from nextquill.comparison.methods import execute
from nextquill.stages import effects, evaluate, prepare, train


def run(name: str, root, params_file, seed: int | None = None) -> dict:
    steps = {"prepare": prepare.run, "effects": effects.run, "train": train.run, "evaluate": evaluate.run}
    return execute(name, root, params_file, steps, seed)


def main(argv: list[str] | None = None) -> int:
    return method_main("trained", run, argv)


if __name__ == "__main__":
    sys.exit(main())
