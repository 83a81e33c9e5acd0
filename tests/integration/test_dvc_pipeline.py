"""`dvc repro` end to end in a scratch copy of the project, with the tiny model as a local base model."""

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.tiny_project import build, sh

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model_dir) -> Path:
    return build(tmp_path_factory.mktemp("project"), tiny_model_dir)


def test_repro_builds_every_output_then_is_a_no_op(project):
    first = sh(project, "dvc", "repro")
    assert first.returncode == 0, first.stderr + first.stdout
    assert (project / "models" / "base" / "model.safetensors").is_file()
    assert (project / "data" / "raw" / "synthetic" / "review_categories" / "Books.jsonl").is_file()
    assert (project / "reports" / "synthesize.json").is_file()
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"base_model", "synthesize", "prepare", "reference", "effects", "train",
                                   "evaluate", "register"}
    assert json.loads((project / "reports" / "metrics.json").read_text())["overall"]["n"] == 6
    assert json.loads((project / "reports" / "train_metrics.json").read_text())["steps"] == 2
    assert (project / "models" / "adapter" / "adapter_model.safetensors").is_file()
    stats = json.loads((project / "reports" / "data_stats.json").read_text())
    assert stats["examples"] == {"train": 96, "val": 12, "test": 12}  # 12 users x (8 + 1 + 1)
    assert 0.15 < stats["preference_token_fraction"] < 0.6

    assert (project / "reports" / "token_effects.html").is_file()
    assert (project / "reports" / "plots" / "train_loss.png").is_file()
    promotion = json.loads((project / "reports" / "promotion.json").read_text())
    assert promotion["decision"] == "promoted" and promotion["version"] == "1" and promotion["created"] is True

    again = sh(project, "dvc", "repro")
    assert again.returncode == 0
    assert "Data and pipelines are up to date." in again.stdout
    assert "Running stage" not in again.stdout


def test_registry_holds_one_champion_and_a_rerun_adds_no_version(project):
    import mlflow

    store = f"sqlite:///{project / 'mlflow.db'}"
    client = mlflow.MlflowClient(store, store)  # both: another test may have set a global registry URI
    versions = client.search_model_versions("name = 'nextquill'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias("nextquill", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("nextquill", "challenger").version) == "1"
    runs = client.search_runs([client.get_experiment_by_name("nextquill").experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["nextquill.pipeline"] == "dvc"
    assert runs[0].data.params["train.objective"] == "nextquill" and "test_rouge1" in runs[0].data.metrics
    # Decoding longer re-runs evaluate and register, but the adapter is the same: no new version.
    params_file = project / "params.yaml"
    original = params_file.read_text()
    try:
        longer = original.replace("max_new_tokens: 8\n  repetition", "max_new_tokens: 9\n  repetition")
        assert longer != original
        params_file.write_text(longer)
        rerun = sh(project, "dvc", "repro")
        assert rerun.returncode == 0, rerun.stderr + rerun.stdout
        assert "Running stage 'evaluate'" in rerun.stdout and "Running stage 'train'" not in rerun.stdout
        assert [str(v.version) for v in client.search_model_versions("name = 'nextquill'")] == ["1"]
        assert json.loads((project / "reports" / "promotion.json").read_text())["created"] is False
    finally:
        params_file.write_text(original)


def test_mistyped_key_fails_repro_naming_the_key(project):
    params_file = project / "params.yaml"
    original = params_file.read_text()
    try:
        params_file.write_text(original.replace("users_per_category:", "users_per_categroy:"))
        result = sh(project, "dvc", "repro")
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert "synthesize.users_per_categroy" in output and "unknown key" in output
    finally:
        params_file.write_text(original)
