"""Comparison stage `derived`: a method built on the context_sft run of the same seed: its adapter decoded
another way (Context Steering), used as θ_D, or under one more LoRA per user (OPPU).

    python -m nextquill.comparison.derived METHOD --seed S   # what `dvc repro comparison/dvc.yaml` runs per run
"""

from __future__ import annotations

import sys

from nextquill.comparison.entry import method_main
from nextquill.comparison.methods import METHODS, execute
from nextquill.comparison.steered import steering_overrides
from nextquill.stages import effects, evaluate, train


def run(name: str, root, params_file, seed: int | None = None) -> dict:
    if METHODS[name].per_user:
        from nextquill.comparison import oppu

        return execute(name, root, params_file, {"oppu": oppu.run}, seed)
    return execute(name, root, params_file, {"effects": effects.run, "train": train.run, "evaluate": evaluate.run},
                   seed, steering_overrides(name, params_file))


def main(argv: list[str] | None = None) -> int:
    return method_main("derived", run, argv)


if __name__ == "__main__":
    sys.exit(main())
