"""Registry, tracking and promotion gate on the tiny Llama and a temporary SQLite MLflow store.

Run: .venv/bin/python -m pytest -q tests/unit/test_registry.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nextquill.config import parse_params
from nextquill.paths import Paths

PROMPT = "<|im_start|>user\nA quiet novel about a lighthouse.<|im_end|>\n<|im_start|>assistant\n"


def make_project(root: Path, base: Path, seed: int, rouge1: float, n: int = 10, split: str = "test"):
    """A project folder: the tiny base, a random (non-zero) LoRA adapter, and the reports a pipeline writes."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shutil.copytree(base, root / "models" / "base", dirs_exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(root / "models" / "base")
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(model, config).eval()
    model.save_pretrained(root / "models" / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(root / "models" / "adapter")
    write_reports(root / "reports", rouge1, n, split)
    return model


def write_reports(reports: Path, rouge1: float, n: int = 10, split: str = "test") -> None:
    (reports / "plots").mkdir(parents=True, exist_ok=True)
    overall = {"n": n, "rouge1": rouge1, "rougeL": rouge1 / 2, "meteor": 0.1, "bleu": 1.5}
    metrics = {"overall": overall, "by_category": {"Books": overall}, "split": split, "decoding": {"a": None}}
    (reports / "metrics.json").write_text(json.dumps(metrics))
    (reports / "train_metrics.json").write_text(json.dumps({"last_loss": 1.5, "lora": True, "objective": "x"}))
    (reports / "data_stats.json").write_text(json.dumps({"examples": {"test": n}, "format": "amazon2023"}))
    (reports / "effects.json").write_text(json.dumps({"examples": 0, "preference_token_fraction": None}))
    (reports / "token_effects.html").write_text("<html></html>")
    (reports / "plots" / "train_log.csv").write_text("step,epoch,loss,loss/lp\n1,0.5,2.0,9.5\n2,1.0,1.5,\n")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store per module (creating its tables takes ~1.5 s); tests use distinct model names."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def make_params(store: str, name: str, **promote):
    return parse_params({"tracking": {"uri": store}, "registry": {"model_name": name, "max_new_tokens": 6},
                         "promote": promote})


@pytest.fixture(scope="module")
def first(tmp_path_factory, tiny_model_dir, store):
    """Stage `register` run once on a fresh model name: (params, paths, in-memory PeftModel, result)."""
    from nextquill.stages.register import run

    root = tmp_path_factory.mktemp("project")
    model = make_project(root, tiny_model_dir, seed=1, rouge1=0.2)
    params = make_params(store, "nq-first")
    return params, Paths(root), model, run(params, Paths(root), tags={"flow_run_id": "abc"})


def test_digest_is_stable_and_sees_adapter_and_base(tmp_path, tiny_model_dir):
    from nextquill.mlops.registry import adapter_digest

    make_project(tmp_path, tiny_model_dir, seed=1, rouge1=0.2)
    adapter, base = tmp_path / "models" / "adapter", tmp_path / "models" / "base"
    digest = adapter_digest(adapter, base)
    assert digest == adapter_digest(adapter, base) and len(digest) == 64
    (adapter / "README.md").write_text("changed")
    assert adapter_digest(adapter, base) != digest
    changed = adapter_digest(adapter, base)
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "rope_theta": 1234.0}))
    assert adapter_digest(adapter, base) != changed


def test_first_version_becomes_champion_and_challenger(first):
    import mlflow

    params, paths, _, result = first
    assert result["created"] and result["version"] == "1" and result["decision"] == "promoted"
    assert result["reason"] == "first version" and result["model_uri"] == "models:/nq-first/1"
    model = mlflow.MlflowClient().get_registered_model("nq-first")
    assert {k: str(v) for k, v in model.aliases.items()} == {"champion": "1", "challenger": "1"}
    tags = mlflow.MlflowClient().get_model_version("nq-first", "1").tags
    assert tags["test_rouge1"] == "0.2" and tags["split"] == "test" and tags["test_n"] == "10"
    assert tags["run_id"] == result["run_id"] and len(tags["adapter_sha256"]) == 64
    assert tags["promotion_decision"] == "promoted"
    assert json.loads((paths.reports / "promotion.json").read_text())["version"] == "1"


def test_pipeline_run_has_params_metrics_curve_artifacts_tags(first):
    import mlflow

    _, _, _, result = first
    client = mlflow.MlflowClient()
    run = client.get_run(result["run_id"])
    assert run.data.params["promote.metric"] == "rouge1"
    assert json.loads(run.data.params["data.categories"]) == ["Books", "Movies_and_TV", "CDs_and_Vinyl"]
    metrics = run.data.metrics
    assert metrics["test_rouge1"] == 0.2 and metrics["test_Books_rouge1"] == 0.2
    assert metrics["data.examples.test"] == 10
    assert metrics["train.last_loss"] == 1.5 and "train.lora" not in metrics and "effects.examples" in metrics
    curve = client.get_metric_history(result["run_id"], "train/loss")
    assert [(m.step, m.value) for m in sorted(curve, key=lambda m: m.step)] == [(1, 2.0), (2, 1.5)]
    assert [m.step for m in client.get_metric_history(result["run_id"], "train/loss/lp")] == [1]
    tags = run.data.tags
    assert tags["flow_run_id"] == "abc" and tags["nextquill.pipeline"] == "dvc" and tags["git_commit"] == "unknown"
    names = {a.path for a in client.list_artifacts(result["run_id"], "reports")}
    assert {"reports/metrics.json", "reports/token_effects.html", "reports/plots"} <= names


def test_identical_adapter_is_not_registered_again(first):
    import mlflow

    from nextquill.stages.register import run

    params, paths, _, _ = first
    again = run(params, paths)
    assert not again["created"] and again["version"] == "1" and again["decision"] == "kept"
    assert len(mlflow.MlflowClient().search_model_versions("name='nq-first'")) == 1


def test_pyfunc_round_trip_is_exact(first):
    import mlflow
    import torch

    params, _, model, _ = first
    loaded = mlflow.pyfunc.load_model("models:/nq-first@champion")
    served = loaded.unwrap_python_model()
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

    assert params.eval.repetition_scope == "generated"  # the default: the penalty skips the prompt
    ids = torch.tensor([served.tokenizer(PROMPT, add_special_tokens=False)["input_ids"]])
    penalty = RepetitionPenaltyLogitsProcessor(1.2, prompt_ignore_length=ids.shape[1])
    with torch.no_grad():
        assert (served.model(input_ids=ids).logits - model(input_ids=ids).logits).abs().max().item() == 0.0
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                             logits_processor=LogitsProcessorList([penalty]),
                             pad_token_id=served.tokenizer.pad_token_id)
    expected = served.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert loaded.predict([{"prompt": PROMPT}]) == [expected]  # default max_new_tokens = registry's 6
    first_two = served.tokenizer.decode(out[0, ids.shape[1]:ids.shape[1] + 2], skip_special_tokens=True)
    assert loaded.predict([{"prompt": PROMPT}], params={"max_new_tokens": 2}) == [first_two]


def test_pyfunc_renders_history_prompts_like_training(first):
    import mlflow

    from nextquill.data.prompts import render_prompt
    from nextquill.data.schema import REVIEW_SYSTEM, HistoryEntry, Target
    from nextquill.mlops.requests import Limits, check_row

    served = mlflow.pyfunc.load_model("models:/nq-first@champion").unwrap_python_model()
    limits = Limits.from_config(served.config)
    row = {"history": ["Loved it.", json.dumps({"text": "Too long.", "title": "Meh", "rating": 2.0})],
           "item_title": "Orbit", "item_description": "A novel.", "rating": 5.0, "review_title": "Yes"}
    target = Target("serving", "", "test", "", "", (("Item Title", "Orbit"), ("Item Description", "A novel.")),
                    (("Output Review Rating", "5.0"), ("Output Review Title", "Yes")), "", (), REVIEW_SYSTEM)
    history = [HistoryEntry((("Review Text", "Loved it."),)),
               HistoryEntry((("Review Rating", "2.0"), ("Review Title", "Meh"), ("Review Text", "Too long.")))]
    assert served.build_prompt(check_row(row, 0, limits)) == render_prompt(served.tokenizer, target, history, "")
    # the H=∅ literal, as in training
    assert "None" in served.build_prompt(check_row({**row, "history": []}, 0, limits))


def versions(client, name: str, scores: list[tuple[float, int, str]]) -> list[str]:
    """Model versions with only the tags the gate reads (no model logged): (rouge1, test_n, split) each."""
    client.create_registered_model(name)
    made = []
    for rouge1, n, split in scores:
        tags = {"test_rouge1": repr(rouge1), "test_n": str(n), "split": split}
        made.append(str(client.create_model_version(name, "file:///nothing", tags=tags).version))
    return made


@pytest.mark.parametrize(("scores", "min_delta", "promoted", "reason"), [
    ([(0.30, 10, "test"), (0.20, 10, "test")], 0.0, False, "< min_delta"),
    ([(0.30, 10, "test"), (0.36, 10, "test")], 0.05, True, ">= min_delta"),
    ([(0.30, 10, "test"), (0.33, 10, "test")], 0.05, False, "< min_delta"),
    ([(0.30, 10, "test"), (0.30, 10, "test")], 0.0, True, ">= min_delta"),  # a tie promotes when min_delta = 0
    ([(0.30, 10, "test"), (0.90, 10, "val")], 0.0, False, "different test split"),
    ([(0.30, 10, "test"), (0.90, 12, "test")], 0.0, False, "different test split"),
])
@pytest.mark.reliability
def test_gate(store, scores, min_delta, promoted, reason):
    import uuid

    import mlflow

    from nextquill.mlops.registry import promote

    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    client, name = mlflow.MlflowClient(), f"gate-{uuid.uuid4().hex[:8]}"
    v1, v2 = versions(client, name, scores)
    params = make_params(store, name, metric="rouge1", min_delta=min_delta)
    gate = params.promote
    assert promote(gate, client, name, v1, client.get_model_version(name, v1).tags)["reason"] == "first version"
    decision = promote(gate, client, name, v2, client.get_model_version(name, v2).tags)
    assert decision["promoted"] is promoted and reason in decision["reason"]
    assert str(client.get_registered_model(name).aliases["champion"]) == (v2 if promoted else v1)
    tags = client.get_model_version(name, v2).tags
    assert tags["promotion_decision"] == ("promoted" if promoted else "rejected")
    assert float(tags["challenger_score"]) == scores[1][0] and float(tags["champion_score"]) == scores[0][0]


@pytest.mark.reliability
def test_worse_then_better_adapter_through_the_stage(tmp_path, tiny_model_dir, store):
    import mlflow

    from nextquill.stages.register import run

    params = make_params(store, "nq-stage", min_delta=0.05)
    make_project(tmp_path, tiny_model_dir, seed=1, rouge1=0.2)
    assert run(params, Paths(tmp_path))["decision"] == "promoted"
    make_project(tmp_path, tiny_model_dir, seed=2, rouge1=0.1)
    worse = run(params, Paths(tmp_path))
    assert worse["created"] and worse["version"] == "2" and worse["decision"] == "rejected"
    make_project(tmp_path, tiny_model_dir, seed=3, rouge1=0.26)
    better = run(params, Paths(tmp_path))
    assert better["version"] == "3" and better["decision"] == "promoted" and better["champion_score"] == 0.2
    aliases = mlflow.MlflowClient().get_registered_model("nq-stage").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "3", "challenger": "3"}


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_the_base_is_stored_once_and_each_version_holds_only_its_adapter(tmp_path, tiny_model_dir):
    import mlflow

    from nextquill.mlops.registry import BASE_TAG
    from nextquill.stages.register import run

    params = make_params(f"sqlite:///{tmp_path}/store.db", "nq-shared")
    for seed in (1, 2):
        make_project(tmp_path / "project", tiny_model_dir, seed=seed, rouge1=0.1 * seed)
        assert run(params, Paths(tmp_path / "project"))["created"]
    client = mlflow.MlflowClient()
    bases = client.search_runs([client.get_experiment_by_name("nextquill base models").experiment_id],
                               f"tags.`{BASE_TAG}` != ''")
    assert len(bases) == 1  # two versions, one stored base
    assert len(client.search_runs([client.get_experiment_by_name("nextquill").experiment_id])) == 2  # pipeline runs
    base_bytes = _bytes(tiny_model_dir)
    for version in ("1", "2"):
        folder = Path(mlflow.artifacts.download_artifacts(f"models:/nq-shared/{version}"))
        assert not list(folder.rglob("model.safetensors")), "a version must not carry a base copy"
        assert json.loads(next(folder.rglob("serving.json")).read_text())["base_uri"].startswith("runs:/")
        served = mlflow.pyfunc.load_model(f"models:/nq-shared/{version}")  # loads with nothing copied by hand
        assert isinstance(served.predict([{"prompt": PROMPT}], {"max_new_tokens": 2})[0], str)
        assert _bytes(Path(next(folder.rglob("adapter_model.safetensors")).parent)) < base_bytes


def test_tracking_uri_never_depends_on_cwd(tmp_path, monkeypatch):
    from nextquill.config import TrackingConfig
    from nextquill.mlops.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(TrackingConfig(), Paths(Path("."))) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert tracking_uri(TrackingConfig(), Paths()) == "http://example:5000"
    assert tracking_uri(TrackingConfig(uri="sqlite:////x.db"), Paths()) == "sqlite:////x.db"
    root = tmp_path / "project"
    assert tracking_uri(TrackingConfig(uri="sqlite:///db/m.db"), Paths(root)) == f"sqlite:///{root}/db/m.db"


@pytest.mark.reliability
def test_a_racing_twin_defers_to_the_older_version(store):
    """Across machines (no shared lock): the later version with the same digest deletes itself."""
    import mlflow

    from nextquill.mlops.registry import _create_version

    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    client, name = mlflow.MlflowClient(), "nq-twin"
    client.create_registered_model(name)
    client.create_model_version(name, "file:///nothing", tags={"adapter_sha256": "d" * 64})
    assert _create_version(client, name, "file:///nothing", "d" * 64, {"split": "test"}) == ("1", False)
    assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]
    assert _create_version(client, name, "file:///nothing", "e" * 64, {}) == ("3", True)


def test_provenance_tags_from_git_dvc_lock_and_orchestrator(tmp_path, monkeypatch):
    from nextquill.mlops.tracking import provenance_tags

    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    monkeypatch.setenv("NEXTQUILL_ORCHESTRATOR", "prefect")
    monkeypatch.setenv("NEXTQUILL_RUN_TAGS", json.dumps({"prefect.flow_run_id": "f1", "git_dirty": "x"}))
    tags = provenance_tags(Paths(tmp_path), {"git_dirty": "y"})
    assert tags["nextquill.pipeline"] == "prefect" and tags["prefect.flow_run_id"] == "f1" and tags["git_dirty"] == "y"
    assert tags["git_commit"] == "unknown" and len(tags["dvc_lock_sha256"]) == 64
    monkeypatch.delenv("NEXTQUILL_RUN_TAGS")
    repo = provenance_tags(Paths(Path(__file__).resolve().parents[2]))
    assert len(repo["git_commit"]) == 40 and repo["git_dirty"] in ("true", "false")
    monkeypatch.setenv("NEXTQUILL_RUN_TAGS", "[1]")
    with pytest.raises(ValueError, match="NEXTQUILL_RUN_TAGS must be a JSON object"):
        provenance_tags(Paths(tmp_path))
