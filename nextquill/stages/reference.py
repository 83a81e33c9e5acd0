"""Stage `reference`: the frozen reference model θ_D of the paper, a ContextSFT adapter.

The paper estimates the data-side effect with "an LLM θ_D trained on dataset D"; like a third-party
re-implementation, NextQuill reads that as the ContextSFT model (with-history SFT) trained with the same
hyper-parameters as `train`. It is trained only when `effects.estimator: reference`; otherwise the
stage writes a folder that says so, in a second, so the pipeline's shape never changes.
"""

from __future__ import annotations

import sys

from nextquill.config import Params
from nextquill.io import atomic_dir
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main

UNUSED = "not used: effects.estimator is {estimator!r}; set it to 'reference' to train θ_D here\n"


def reference_params(params: Params) -> Params:
    """The `train` settings with the ContextSFT objective, whose weights need no estimator."""
    train = params.train.model_copy(update={"objective": "context_sft"})
    effects = params.effects.model_copy(update={"estimator": "online"})
    return params.model_copy(update={"train": train, "effects": effects})


def run(params: Params, paths: Paths) -> dict:
    if params.effects.estimator != "reference":
        with atomic_dir(paths.reference) as out:
            (out / "UNUSED.txt").write_text(UNUSED.format(estimator=params.effects.estimator))
        return {"trained": False}
    from nextquill.model.training import train_adapter

    metrics = train_adapter(reference_params(params), paths, paths.reference, name="reference")
    return {"trained": True, **(metrics or {})}  # None: another process of a data-parallel run writes


def main(argv: list[str] | None = None) -> int:
    return stage_main("reference", run, argv)


if __name__ == "__main__":
    sys.exit(main())
