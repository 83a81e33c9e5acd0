"""Comparison stage `zero_shot`: the base model, evaluated (no training).

    python -m nextquill.comparison.zero_shot METHOD      # what `dvc repro comparison/dvc.yaml` runs per method
"""

from __future__ import annotations

import sys

from nextquill.comparison.entry import method_main
from nextquill.comparison.methods import execute
from nextquill.stages import evaluate


def run(name: str, root, params_file) -> dict:
    return execute(name, root, params_file, {"evaluate": evaluate.run})


def main(argv: list[str] | None = None) -> int:
    return method_main("zero_shot", run, argv)


if __name__ == "__main__":
    sys.exit(main())
