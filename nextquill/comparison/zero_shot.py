"""Comparison stage `zero_shot`: evaluate the base model (on its own prepared data when the method needs one).

    python -m nextquill.comparison.zero_shot METHOD    # what `dvc repro comparison/dvc.yaml` runs per method
"""

from __future__ import annotations

import sys

from nextquill.comparison.entry import method_main
from nextquill.comparison.methods import execute
from nextquill.comparison.steered import steering_overrides
from nextquill.stages import evaluate, prepare


def run(name: str, root, params_file, seed: int | None = None) -> dict:
    return execute(name, root, params_file, {"prepare": prepare.run, "evaluate": evaluate.run}, seed,
                   steering_overrides(name, params_file))


def main(argv: list[str] | None = None) -> int:
    return method_main("zero_shot", run, argv)


if __name__ == "__main__":
    sys.exit(main())
