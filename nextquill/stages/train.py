"""Stage `train`: fine-tune the base model with one objective of the paper's ablation (LoRA by default).

Reads `data/prepared/train.parquet` (and `data/effects/train.parquet` when the token weights are
precomputed), writes the adapter with its tokenizer to `models/adapter/`, the final metrics to
`reports/train_metrics.json` and one row per logging step to `reports/plots/train_log.csv`.
Checkpoints go to `models/checkpoints/<fingerprint>/` (outside DVC's outputs, keyed by everything
that shapes training), so `train.resume: auto` continues an interrupted run and never a different one;
a finished run removes them.

Multi-GPU: `accelerate launch -m nextquill.stages.train` or `torchrun --nproc_per_node N -m nextquill.stages.train`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
import shutil
import sys
from pathlib import Path

from nextquill.config import Params
from nextquill.io import atomic_dir, atomic_open, write_json
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main

COLUMNS = ["example_id", "prompt_ids_with", "prompt_ids_without", "target_ids"]
log = logging.getLogger(__name__)


def load_examples(path: Path, max_examples: int | None, seed: int, weights: Path | None = None) -> list[dict]:
    """Training rows (a seeded sample when `max_examples` is set), with their precomputed weights if any."""
    import pyarrow.parquet as pq

    rows = pq.read_table(path, columns=COLUMNS).to_pylist()
    if max_examples is not None and max_examples < len(rows):
        rows = random.Random(seed).sample(rows, max_examples)
    if weights is not None:
        table = pq.read_table(weights, columns=["example_id", "weights"]).to_pylist()
        by_id = {r["example_id"]: r["weights"] for r in table}
        missing = [r["example_id"] for r in rows if r["example_id"] not in by_id]
        if missing:
            raise ValueError(f"{weights}: no weights for {len(missing)} training examples (e.g. {missing[0]}); "
                             "re-run `dvc repro effects`")
        for r in rows:
            r["weights"] = by_id[r["example_id"]]
    return rows


def fingerprint(params: Params, data_file: Path) -> str:
    """Hash of everything that shapes training: a checkpoint is resumed only by the run that wrote it."""
    parts = [params.train.model_dump_json(), params.effects.model_dump_json(), params.model.model_dump_json(),
             str(params.base.seed), str(data_file.stat().st_size), str(int(data_file.stat().st_mtime))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing; half-written ones (a kill -9 mid-save) are removed.

    The Trainer writes `trainer_state.json` last, so a checkpoint without a readable one is incomplete.
    """
    found = sorted((p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True) if folder.is_dir() else []
    for checkpoint in found:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            return str(checkpoint)
        except (OSError, ValueError):
            log.warning("%s: incomplete checkpoint (interrupted while saving); removing it", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def build_model(params: Params, paths: Paths):
    from transformers import set_seed

    from nextquill.modeling import load_model

    set_seed(params.base.seed)  # the LoRA init draws from the RNG before the Trainer seeds it
    model, tokenizer = load_model(paths.base_model, params.model.dtype)
    model.config.use_cache = False
    lora = params.train.lora
    if lora.enabled:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    return model, tokenizer


def training_args(params: Params, output_dir: Path):
    import torch
    from transformers import TrainingArguments

    cfg = params.train
    return TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        lr_scheduler_type="linear", max_grad_norm=1.0, logging_steps=cfg.logging_steps, save_steps=cfg.save_steps,
        save_total_limit=2, seed=params.base.seed, data_seed=params.base.seed, bf16=torch.cuda.is_available(),
        activation_checkpointing=cfg.gradient_checkpointing, remove_unused_columns=False, report_to="none",
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False,
    )


def write_metrics(history: list[dict], paths: Paths, extra: dict, name: str = "train") -> dict:
    """`reports/plots/{name}_log.csv` (one row per logging step) and `reports/{name}_metrics.json`."""
    steps = [h for h in history if "loss" in h]
    keys = sorted({k for h in steps for k in h if k not in ("step", "epoch")})
    with atomic_open(paths.reports / "plots" / f"{name}_log.csv") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "epoch", *keys])
        writer.writeheader()
        for h in steps:
            writer.writerow({k: h.get(k) for k in ["step", "epoch", *keys]})
    final = next((h for h in reversed(history) if "train_runtime" in h), {})
    metrics = {**extra, **{k: v for k, v in final.items() if isinstance(v, int | float)}}
    if steps:
        metrics.update({f"last_{k}": steps[-1][k] for k in keys if k in steps[-1]})
    write_json(paths.reports / f"{name}_metrics.json", metrics)
    return metrics


def train_adapter(params: Params, paths: Paths, out: Path, name: str = "train") -> dict:
    """Train `params.train.objective` from the base model and write the adapter (or full model) to `out`."""
    from nextquill.collator import CausalPairCollator
    from nextquill.trainer import LossSettings, NextQuillTrainer

    cfg, fx = params.train, params.effects
    settings = LossSettings(objective=cfg.objective, estimator=fx.estimator, weighting=fx.weighting, alpha=cfg.alpha,
                            weight_lp=cfg.weight_lp, delta=fx.delta, lam=fx.lam, eps=fx.eps)
    data_file = paths.prepared / "train.parquet"
    rows = load_examples(data_file, cfg.max_examples, params.base.seed,
                         paths.effects / "train.parquet" if settings.precomputed else None)
    model, tokenizer = build_model(params, paths)
    checkpoints = paths.checkpoints / fingerprint(params, data_file)
    trainer = NextQuillTrainer(
        model=model, args=training_args(params, checkpoints), train_dataset=rows, settings=settings,
        data_collator=CausalPairCollator(tokenizer.pad_token_id, settings.views,
                                         "weights" if settings.precomputed else None),
    )
    last = last_complete_checkpoint(checkpoints) if cfg.resume == "auto" else None
    trainer.train(resume_from_checkpoint=last)
    info = {"objective": cfg.objective, "estimator": fx.estimator, "examples": len(rows), "lora": cfg.lora.enabled}
    with atomic_dir(out) as folder:
        trainer.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        resumed = {"resumed_from": Path(last).name if last else None}
        (folder / "nextquill_train.json").write_text(json.dumps(info | resumed, indent=2) + "\n")
    shutil.rmtree(checkpoints, ignore_errors=True)  # the run finished: its resume state is no longer needed
    return write_metrics(trainer.state.log_history, paths, info | {"steps": trainer.state.global_step}, name)


def run(params: Params, paths: Paths) -> dict:
    return train_adapter(params, paths, paths.adapter)


def main(argv: list[str] | None = None) -> int:
    return stage_main("train", run, argv)


if __name__ == "__main__":
    sys.exit(main())
