"""OPPU (One PEFT Per User): one more LoRA per test user, trained on that user's own examples, decoding that user.

The ContextSFT adapter of the same seed is merged into the base model first; every user then starts from the
same fresh LoRA (one seeded initialisation, restored before each user), trains `compare.oppu_epochs` passes over
their own training examples (their past reviews as targets, each prompt with its history, as ContextSFT
trained) and decodes their evaluated target. The users are a seeded sample (`compare.oppu_users`) of the
evaluated targets' users, the same for every training seed; the table says how many targets OPPU scored.
The DCE diagnostics are not scored: there is one model per user.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time

from nextquill.config import Params
from nextquill.io import write_json
from nextquill.paths import Paths

log = logging.getLogger(__name__)


def chosen_users(rows: list[dict], count: int | None, seed: int) -> list[str]:
    """A seeded sample of `count` users among those of `rows` (all of them when count is None or larger)."""
    users = sorted({r["user_id"] for r in rows})
    if count is None or count >= len(users):
        return users
    return sorted(random.Random(seed).sample(users, count))


def own_examples(paths: Paths, users: list[str]) -> dict[str, list[dict]]:
    """Each user's training examples (all of them, in file order): the user's own past reviews as targets."""
    import pyarrow.parquet as pq

    from nextquill.model.examples import COLUMNS

    table = pq.read_table(paths.prepared / "train.parquet", columns=[*COLUMNS, "user_id"],
                          filters=[("user_id", "in", users)]).to_pylist()
    own: dict[str, list[dict]] = {u: [] for u in users}
    for row in table:
        own[row.pop("user_id")].append(row)
    return own


def build_user_model(params: Params, paths: Paths):
    """Base ⊕ ContextSFT adapter (merged), with a fresh LoRA on top; returns (model, tokenizer, initial LoRA)."""
    import copy

    from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
    from transformers import set_seed

    from nextquill.model.loading import load_model

    model, tokenizer = load_model(paths.base_model, params.model.dtype)
    model = PeftModel.from_pretrained(model, paths.adapter).merge_and_unload()
    model.config.use_cache = False
    set_seed(params.training_seed)  # one LoRA initialisation, restored for every user
    lora = params.train.lora
    model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                             target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    return model, tokenizer, copy.deepcopy(get_peft_model_state_dict(model))


def train_user(params: Params, model, tokenizer, rows: list[dict], folder: str) -> dict:
    """Train the user's LoRA on `rows` (their own examples); the Trainer is new per user, so is its optimizer."""
    from nextquill.model.collator import CausalPairCollator
    from nextquill.model.trainer import LossSettings, NextQuillTrainer
    from nextquill.model.training import training_args

    settings = LossSettings.from_params(params)
    args = training_args(params, folder, model.dtype, num_train_epochs=params.compare.oppu_epochs, max_steps=-1,
                         gradient_accumulation_steps=1, save_strategy="no")
    trainer = NextQuillTrainer(model=model, args=args, train_dataset=rows, settings=settings,
                               data_collator=CausalPairCollator(tokenizer.pad_token_id, settings.views))
    result = trainer.train()
    return {"steps": trainer.state.global_step, "train_loss": float(result.training_loss)}


def run(params: Params, paths: Paths) -> dict:
    """Train and decode every chosen user; write predictions, metrics and `reports/oppu.json` like `evaluate`."""
    from peft import set_peft_model_state_dict

    from nextquill.model.generation import Decoding, generate
    from nextquill.progress import Progress
    from nextquill.stages.evaluate import load_rows, prompt_view, write_results

    if params.train.objective != "context_sft":
        raise ValueError(f"OPPU trains each user's LoRA with the context_sft objective, not "
                         f"{params.train.objective!r}")
    view = prompt_view(params)
    targets = load_rows(params, paths)
    users = chosen_users(targets, params.compare.oppu_users, params.base.seed)
    own = own_examples(paths, users)
    model, tokenizer, initial = build_user_model(params, paths)
    decoding = Decoding.from_config(params.eval)
    rows, hyps, per_user = [], [], []
    progress = Progress(len(users), "oppu users", "users")
    with tempfile.TemporaryDirectory(prefix="oppu-") as folder:
        for user in users:
            start = time.perf_counter()
            set_peft_model_state_dict(model, initial)
            info = train_user(params, model, tokenizer, own[user], folder) if own[user] else {"steps": 0}
            mine = [r for r in targets if r["user_id"] == user]
            hyps += generate(model, tokenizer, [r["prompt_ids_with"] for r in mine], decoding,
                             params.eval.batch_size, desc=None)
            rows += mine
            per_user.append({"user_id": user, "examples": len(own[user]), **info,
                             "seconds": round(time.perf_counter() - start, 1)})
            progress.update(1)
    progress.close()
    write_json(paths.reports / "oppu.json", {"users": len(users), "users_evaluated": len({r["user_id"] for r in
                                                                                            targets}),
                                             "epochs": params.compare.oppu_epochs, "per_user": per_user})
    return write_results(params, paths, rows, hyps, view, {},
                         model_note="base + ContextSFT (merged) + one LoRA per user")["overall"]
