"""The `effects` and `train` stages with the tiny model: every objective trains, LoRA moves only adapters,
precomputed weights are read, and an interrupted run resumes from its checkpoint."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from nextquill.config import EffectsConfig, Params, TrainConfig
from nextquill.data.build import example_schema
from nextquill.paths import Paths
from nextquill.stages import effects, train
from tests.conftest import twin_view_rows

FAST = dict(max_steps=2, batch_size=2, grad_accum=2, logging_steps=1, save_steps=2, max_examples=None)


@pytest.fixture
def root(tmp_path, tiny_model_dir, tiny_tokenizer):
    shutil.copytree(tiny_model_dir, Paths(tmp_path).base_model)
    rows = twin_view_rows(tiny_tokenizer, 12)
    Paths(tmp_path).prepared.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=example_schema()), Paths(tmp_path).prepared / "train.parquet")
    return tmp_path


def params(**train) -> Params:
    return Params(train=TrainConfig(**(FAST | train)))


@pytest.mark.parametrize("objective", ["sft", "context_sft", "mce_only", "dce_only", "mce_dce", "nextquill"])
def test_every_objective_trains_and_saves_a_loadable_adapter(root, objective):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    paths = Paths(root)
    effects.run(params(objective=objective), paths)
    metrics = train.run(params(objective=objective), paths)
    assert metrics["objective"] == objective and metrics["steps"] == 2
    assert torch.isfinite(torch.tensor(metrics["last_loss"]))
    log = (paths.reports / "plots" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("step,epoch") and "loss/ln" in log[0] and len(log) == 3  # header + 2 steps
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(paths.base_model), paths.adapter)
    assert any("lora_B" in name for name, _ in model.named_parameters())
    assert json.loads((paths.adapter / "nextquill_train.json").read_text())["objective"] == objective


def test_lora_moves_adapters_and_leaves_the_base_frozen(root):
    from nextquill.model.collator import CausalPairCollator
    from nextquill.model.trainer import LossSettings, NextQuillTrainer

    paths, p = Paths(root), params()
    from nextquill.model.examples import load_examples
    from nextquill.model.training import build_model, training_args

    model, tok = build_model(p, paths)
    before = {n: w.detach().clone() for n, w in model.named_parameters()}
    rows = load_examples(paths.prepared / "train.parquet", None, 0)
    trainer = NextQuillTrainer(model=model, args=training_args(p, root / "ckpt", model.dtype), train_dataset=rows,
                               data_collator=CausalPairCollator(tok.pad_token_id),
                               settings=LossSettings.from_params(p, objective="nextquill"))
    trainer.train()
    for name, weight in model.named_parameters():
        if "lora_B" in name:
            assert not torch.equal(weight, before[name]), name  # lora_B starts at 0: it must have moved
        elif "lora_" not in name:
            torch.testing.assert_close(weight, before[name], rtol=0, atol=0)
            assert not weight.requires_grad


def test_precomputed_base_weights_are_written_and_used(root):
    paths = Paths(root)
    p = Params(train=TrainConfig(**FAST, objective="dce_only"), effects=EffectsConfig(estimator="base", delta=0.0))
    summary = effects.run(p, paths)
    table = pq.read_table(paths.effects / "train.parquet").to_pylist()
    prepared = {r["example_id"]: r for r in pq.read_table(paths.prepared / "train.parquet").to_pylist()}
    assert summary["examples"] == len(table) == 12
    for row in table:
        assert len(row["weights"]) == len(row["dce"]) == len(prepared[row["example_id"]]["target_ids"])
        assert set(round(w, 4) for w in row["weights"]) <= {0.9, 0.1}
        assert all((w > 0.5) == (d > 0.0) for w, d in zip(row["weights"], row["dce"], strict=True))
    assert train.run(p, paths)["estimator"] == "base"


def test_interrupted_training_resumes_from_its_checkpoint(root, monkeypatch):
    from nextquill.model.trainer import NextQuillTrainer

    paths, p = Paths(root), params(max_steps=4, save_steps=2)
    effects.run(p, paths)
    real_step, calls = NextQuillTrainer.training_step, {"n": 0}

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 6:  # micro-batch 7 of 8: after the step-2 checkpoint, before the end
            raise KeyboardInterrupt("killed")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(NextQuillTrainer, "training_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train.run(p, paths)
    assert not paths.adapter.exists()  # nothing half-written where DVC looks
    monkeypatch.setattr(NextQuillTrainer, "training_step", real_step)
    metrics = train.run(p, paths)
    assert metrics["steps"] == 4
    assert json.loads((paths.adapter / "nextquill_train.json").read_text())["resumed_from"] == "checkpoint-2"


def test_reference_estimator_trains_theta_d_then_weights_from_it(root):
    from nextquill.stages import reference

    paths = Paths(root)
    unused = reference.run(params(), paths)
    assert unused == {"trained": False} and "not used" in (paths.reference / "UNUSED.txt").read_text()
    p = Params(train=TrainConfig(**FAST, objective="nextquill"), effects=EffectsConfig(estimator="reference"))
    ref = reference.run(p, paths)
    assert ref["trained"] and ref["objective"] == "context_sft" and (paths.reference / "adapter_config.json").is_file()
    assert (paths.reports / "reference_metrics.json").is_file()
    base_weights = effects.run(p.model_copy(update={"effects": EffectsConfig(estimator="base")}), paths)
    base_dce = pq.read_table(paths.effects / "train.parquet").column("dce").to_pylist()
    ref_summary = effects.run(p, paths)
    assert ref_summary["estimator"] == "reference" and ref_summary["tokens"] == base_weights["tokens"]
    assert pq.read_table(paths.effects / "train.parquet").column("dce").to_pylist() != base_dce  # θ_D, not base
    assert train.run(p, paths)["estimator"] == "reference"


def test_full_fine_tuning_saves_a_whole_model_that_changed(root):
    from transformers import AutoModelForCausalLM

    from nextquill.config import LoraSettings

    paths = Paths(root)
    p = Params(train=TrainConfig(**FAST, lora=LoraSettings(enabled=False), learning_rate=1e-2))
    effects.run(p, paths)
    train.run(p, paths)
    assert (paths.adapter / "config.json").is_file() and not (paths.adapter / "adapter_config.json").exists()
    tuned = AutoModelForCausalLM.from_pretrained(paths.adapter)
    base = AutoModelForCausalLM.from_pretrained(paths.base_model)
    changed = [n for (n, a), (_, b) in zip(tuned.named_parameters(), base.named_parameters(), strict=True)
               if not torch.equal(a, b)]
    assert len(changed) > len(list(base.parameters())) // 2


def test_a_finished_run_leaves_no_checkpoints(root):
    paths = Paths(root)
    effects.run(params(), paths)
    train.run(params(), paths)
    assert paths.checkpoints.is_dir()  # save_steps=2 wrote checkpoint-2 under it during the run
    assert list(paths.checkpoints.iterdir()) == []


def test_same_params_and_seed_give_the_same_adapter(root, tmp_path_factory):
    from safetensors.torch import load_file

    paths = Paths(root)
    effects.run(params(), paths)
    train.run(params(), paths)
    first = load_file(paths.adapter / "adapter_model.safetensors")
    torch.manual_seed(1234)  # whatever the RNG state before the run, the result must not change
    train.run(params(), paths)
    second = load_file(paths.adapter / "adapter_model.safetensors")
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)


def test_effect_to_effect_trains_on_the_base_models_dce(root):
    """lp effect_to_effect with the base estimator: the effects stage writes the DCE, training regresses onto it."""
    import csv

    paths = Paths(root)
    p = Params(train=TrainConfig(**FAST, objective="nextquill", lp="effect_to_effect"),
               effects=EffectsConfig(estimator="base"))
    effects.run(p, paths)
    assert train.run(p, paths)["estimator"] == "base"
    with (paths.reports / "plots" / "train_log.csv").open() as handle:
        lp = [float(row["loss/lp"]) for row in csv.DictReader(handle)]
    # Before the first update the model is the base model (LoRA B = 0), so its effect equals the base's DCE
    # exactly and L_p is 0: the base estimator makes effect-to-effect a pull towards the base's effects.
    assert len(lp) == 2 and lp[0] < 1e-12 and 0 <= lp[1] < 4
