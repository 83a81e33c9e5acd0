"""Training shared by the stages that train (`train`, and `reference` for θ_D): rows, model, Trainer, outputs.

Checkpoints go to `models/checkpoints/<fingerprint>/` (outside DVC's outputs, keyed by everything that
shapes training), so `train.resume: auto` continues an interrupted run and never a different one; a
finished run removes them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from pathlib import Path

from nextquill.config import Params
from nextquill.io import atomic_dir, atomic_open, write_json
from nextquill.model.examples import load_examples
from nextquill.paths import Paths

log = logging.getLogger(__name__)


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

    from nextquill.model.loading import load_model

    set_seed(params.training_seed)  # the LoRA init draws from the RNG before the Trainer seeds it
    model, tokenizer = load_model(paths.base_model, params.model.dtype)
    model.config.use_cache = False
    lora = params.train.lora
    if lora.enabled:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    return model, tokenizer


def precision_flags(dtype) -> dict[str, bool]:
    """The Trainer's mixed-precision switches for weights of `dtype`: bf16 for bfloat16, fp16 for float16.

    Decided by the weights the model was loaded with (`model.dtype`), not by whether a GPU is present: a
    float32 model on a GPU machine trains in float32, a bfloat16 one on a CPU in bfloat16.
    """
    import torch

    # transformers runs bf16 on a CPU only when told the run is on the CPU (`use_cpu`).
    return {"bf16": dtype == torch.bfloat16, "fp16": dtype == torch.float16, "use_cpu": not torch.cuda.is_available()}


def training_args(params: Params, output_dir: Path, dtype, **overrides):
    """`TrainingArguments` from `params.train`; `dtype` is the loaded model's weight dtype; `overrides` replace
    any of the arguments (OPPU's per-user runs: their own epochs, no checkpoints)."""
    from transformers import TrainingArguments

    cfg = params.train
    seed = params.training_seed
    args = dict(
        output_dir=str(output_dir), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        lr_scheduler_type="linear", max_grad_norm=1.0, logging_steps=cfg.logging_steps, save_steps=cfg.save_steps,
        save_total_limit=2, seed=seed, data_seed=seed, **precision_flags(dtype),
        activation_checkpointing=cfg.gradient_checkpointing, remove_unused_columns=False, report_to="none",
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False,
    )
    return TrainingArguments(**(args | overrides))


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


def progress_callback(desc: str):
    """A Trainer callback that reports optimizer steps, the last logged loss and the ETA (`nextquill.progress`).

    Only the first process of a distributed run reports, so N processes print one progress, not N.
    """
    from transformers import TrainerCallback

    from nextquill.progress import Progress

    class _Progress(TrainerCallback):
        progress: Progress | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.progress = Progress(state.max_steps, desc, "steps")
                self.progress.done = state.global_step  # a resumed run starts where it stopped

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is not None and logs and "loss" in logs:
                self.progress.show(loss=float(logs["loss"]))

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(state.global_step - self.progress.done)

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.close()
                self.progress = None

    return _Progress()


def train_adapter(params: Params, paths: Paths, out: Path, name: str = "train", callbacks: tuple = ()) -> dict | None:
    """Train `params.train.objective` from the base model and write the adapter (or full model) to `out`.

    `callbacks` are more Trainer callbacks (the learning curve saves the adapter at several budgets).

    Returns the training metrics; under data parallelism (torchrun, accelerate) only the first process writes
    the outputs and returns them, the others return None.
    """
    from nextquill.model.collator import CausalPairCollator
    from nextquill.model.trainer import LossSettings, NextQuillTrainer

    cfg, fx = params.train, params.effects
    settings = LossSettings.from_params(params)
    data_file = paths.prepared / "train.parquet"
    rows = load_examples(data_file, cfg.max_examples, params.training_seed,
                         paths.effects / "train.parquet" if settings.precomputed or settings.needs_data_effect
                         else None)
    model, tokenizer = build_model(params, paths)
    checkpoints = paths.checkpoints / fingerprint(params, data_file)
    trainer = NextQuillTrainer(
        model=model, args=training_args(params, checkpoints, model.dtype), train_dataset=rows, settings=settings,
        data_collator=CausalPairCollator(tokenizer.pad_token_id, settings.views,
                                         "weights" if settings.precomputed else None,
                                         "dce" if settings.needs_data_effect else None),
        callbacks=[progress_callback(name), *callbacks],
    )
    last = last_complete_checkpoint(checkpoints) if cfg.resume == "auto" else None
    trainer.train(resume_from_checkpoint=last)
    if not trainer.is_world_process_zero():  # data-parallel: the other ranks hold the same weights; rank 0 writes
        return None
    info = {"objective": cfg.objective, "estimator": fx.estimator, "examples": len(rows), "lora": cfg.lora.enabled}
    with atomic_dir(out) as folder:
        trainer.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        resumed = {"resumed_from": Path(last).name if last else None}
        (folder / "nextquill_train.json").write_text(json.dumps(info | resumed, indent=2) + "\n")
    shutil.rmtree(checkpoints, ignore_errors=True)  # the run finished: its resume state is no longer needed
    return write_metrics(trainer.state.log_history, paths, info | {"steps": trainer.state.global_step}, name)
