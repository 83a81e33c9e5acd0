"""One test per departure the code review of December 2026 found between what the code claimed and did.

Each fails on the code before its fix: the no-history prompt's extra blank line, a preference-token fraction
that could never be non-zero, weights of the wrong length accepted in silence, bf16 decided by the presence of a
GPU, and online weights drawn from two independent LoRA dropout masks.
"""

from __future__ import annotations

import pytest
import torch

from nextquill.config import ConfigError, EffectsConfig, Params, TrainConfig, parse_params
from nextquill.data.prompts import render_user_message
from nextquill.data.schema import REVIEW_SYSTEM, Target
from nextquill.method.causal import end_positions
from nextquill.model.collator import CausalPairCollator


def test_the_no_history_literal_is_followed_directly_by_the_question():
    target = Target("e", "u", "test", "Books", "i", (("Item Title", "T"),), (("Output Review Rating", "5.0"),), "x",
                    (), REVIEW_SYSTEM)
    assert render_user_message(target, None, "None").endswith("[User's Past Reviews]:\nNone\n"
                                                              "[Output Review Rating]: 5.0\n")


def test_preference_token_fraction_counts_tokens_whose_dce_exceeds_delta(tmp_path, tiny_model_dir):
    """δ = -1 makes every token preference-bearing: the fraction is 1 (a float32 weight never equalled λ)."""
    import json
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from nextquill.data.build import example_schema
    from nextquill.paths import Paths
    from nextquill.stages import effects

    paths = Paths(tmp_path)
    shutil.copytree(tiny_model_dir, paths.base_model)
    rows = [{"example_id": f"e{i}", "user_id": "u", "split": "train", "category": "Books", "item_id": "i",
             "prompt_with": "", "prompt_without": "", "target": "", "prompt_ids_with": [5, 6, 7, 8],
             "prompt_ids_without": [5, 8], "target_ids": [9, 10, 11], "n_history": 1, "n_history_available": 1,
             "target_truncated": False, "query_truncated": False, "pref_labels": None} for i in range(3)]
    paths.prepared.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=example_schema()), paths.prepared / "train.parquet")
    for delta, expected in ((-1.0, 1.0), (1.0, 0.0)):  # DCE is a probability gain: always inside (-1, 1)
        p = Params(effects=EffectsConfig(estimator="base", delta=delta, lam=0.9, eps=0.1),
                   train=TrainConfig(max_examples=None))
        summary = effects.run(p, paths)
        assert summary["tokens"] == 9 and summary["preference_token_fraction"] == expected
        assert json.loads((paths.reports / "effects.json").read_text())["preference_token_fraction"] == expected


def test_weights_of_the_wrong_length_are_refused_naming_the_row():
    rows = [{"example_id": "Books/u1/train/0", "prompt_ids_with": [5, 6], "prompt_ids_without": [5],
             "target_ids": [8, 9, 2], "weights": [0.9, 0.1]}]
    with pytest.raises(ValueError, match=r"Books/u1/train/0\): 2 weights for 3 target tokens"):
        CausalPairCollator(0, ("h",), "weights")(rows)


@pytest.mark.parametrize(("dtype", "bf16"), [(torch.float32, False), (torch.bfloat16, True)])
def test_mixed_precision_follows_the_model_dtype_not_the_gpu(tmp_path, dtype, bf16):
    """A bfloat16 model trains in bf16 on a CPU too (before: bf16 only when a GPU was present)."""
    from nextquill.model.training import precision_flags, training_args

    args = training_args(Params(), tmp_path, dtype)
    assert (args.bf16, args.fp16) == (bf16, False)
    assert {k: precision_flags(torch.float16)[k] for k in ("bf16", "fp16")} == {"bf16": False, "fp16": True}


def test_dropout_with_both_views_is_refused():
    with pytest.raises(ConfigError, match="train.lora.dropout = 0.05 with objective 'nextquill'"):
        parse_params({"train": {"lora": {"dropout": 0.05}}}, source="params.yaml", lines={})
    parse_params({"train": {"objective": "context_sft", "lora": {"dropout": 0.05}}}, source="params.yaml", lines={})


def test_online_weights_are_a_function_of_the_parameters_and_the_batch(tiny_model_dir):
    """In training mode, as the Trainer runs it: two passes over one batch give the same weights and MCE."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from nextquill.model.views import WeightSettings, answer_logits, online_weights

    params = Params()  # the defaults of params.yaml
    lora = params.train.lora
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                      target_modules=list(lora.target_modules), init_lora_weights=False))
    model.train()
    rows = [{"prompt_ids_with": [5, 6, 7, 8, 9], "prompt_ids_without": [5, 9], "target_ids": [10, 11, 12, 13]}] * 2
    batch = CausalPairCollator(0)(rows)
    keep = batch["labels"] != -100
    settings = WeightSettings.from_effects(params.effects)
    runs = []
    for _ in range(2):
        logits_h, logits_0 = answer_logits(model, batch, "h", keep), answer_logits(model, batch, "0", keep)
        runs.append((online_weights(settings, logits_h, logits_0, batch["labels"][keep],
                                    end_positions(batch["labels"])), logits_h - logits_0))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=0, atol=0)


def test_effect_to_effect_with_the_online_estimator_is_refused_as_degenerate():
    with pytest.raises(ConfigError, match="L_p = \\(e - stopgrad\\(e\\)\\)² is 0"):
        parse_params({"train": {"lp": "effect_to_effect"}}, source="params.yaml", lines={})
    parse_params({"train": {"lp": "effect_to_effect"}, "effects": {"estimator": "base"}}, source="params.yaml",
                 lines={})
