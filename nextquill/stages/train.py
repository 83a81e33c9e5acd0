"""Stage `train`: fine-tune the base model with one objective of the paper's ablation (LoRA by default).

Reads `data/prepared/train.parquet` (and `data/effects/train.parquet` when the token weights are
precomputed), writes the adapter with its tokenizer to `models/adapter/`, the final metrics to
`reports/train_metrics.json`, one row per logging step to `reports/plots/train_log.csv` and the
loss curve to `reports/plots/train_loss.png`. The work is `nextquill.model.training`.

Multi-GPU: `accelerate launch -m nextquill.stages.train` or `torchrun --nproc_per_node N -m nextquill.stages.train`.
"""

from __future__ import annotations

import sys

from nextquill.config import Params
from nextquill.model.training import train_adapter
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main


def run(params: Params, paths: Paths) -> dict:
    from nextquill.evaluation.report import write_loss_plot

    metrics = train_adapter(params, paths, paths.adapter)
    if metrics is None:  # not the first process of a data-parallel run: that one writes the outputs
        return {}
    write_loss_plot(paths.reports / "plots" / "train_log.csv", paths.reports / "plots" / "train_loss.png")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_main("train", run, argv)


if __name__ == "__main__":
    sys.exit(main())
