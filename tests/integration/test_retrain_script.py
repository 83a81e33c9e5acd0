"""`.ci/retrain`, the retrain workflow's one script, end to end in a scratch git + DVC copy of the project.

The copy uses the tiny model and small params (set through the flow's own comment-preserving writer), and an
MLflow registry in a temporary SQLite file passed as $MLFLOW_TRACKING_URI, as the workflow's secret would be.
Run: .venv/bin/python -m pytest -q tests/integration/test_retrain_script.py
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration
SMALL = {
    "synthesize.categories": ["Books"], "synthesize.users_per_category": 12, "synthesize.items_per_category": 20,
    "synthesize.min_reviews": 18, "synthesize.max_reviews": 20, "synthesize.distractor_items": 1,
    "data.categories": ["Books"], "data.max_prompt_tokens": 2048, "data.profile_item_min_users": 2,
    "train.max_steps": 2, "train.max_examples": 16, "train.batch_size": 2, "train.grad_accum": 2,
    "eval.max_examples": 6, "eval.max_new_tokens": 8,
}


def sh(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env)
    for key in ("GITHUB_STEP_SUMMARY", "NQ_OVERRIDES", "MLFLOW_TRACKING_URI", "PREFECT_HOME"):
        if key not in env:
            full.pop(key, None)
    return subprocess.run(args, cwd=cwd, env=full, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model_dir) -> Path:
    sys.path.insert(0, str(REPO / "flows"))
    from nextquill_flow import apply_overrides

    root = tmp_path_factory.mktemp("retrain")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    for name in ("nextquill", "flows", ".ci"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    apply_overrides.fn(str(root), {"model.name_or_path": str(tiny_model_dir), **SMALL})
    git = ("git", "-c", "user.name=t", "-c", "user.email=t@example.com")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], [*git, "commit", "-q", "-m", "project"]):
        result = sh(root, *cmd)
        assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("retrain-ci")
    return {"GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "NQ_OVERRIDES": "eval.max_new_tokens=6"}


@pytest.fixture(scope="module")
def first_run(project, env) -> subprocess.CompletedProcess:
    return sh(project, ".ci/retrain", **env)


def versions(env: dict[str, str]) -> list[str]:
    import mlflow

    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"], env["MLFLOW_TRACKING_URI"])
    return sorted(str(v.version) for v in client.search_model_versions("name = 'nextquill'"))


def test_an_invalid_override_fails_before_any_stage_naming_the_key(project):
    before = (project / "params.yaml").read_text()
    result = sh(project, ".ci/retrain", NQ_OVERRIDES="eval.max_examples=2 train.lr=1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "train.lr" in output and "unknown key" in output, output
    assert "== dvc pull" not in output and "Running stage" not in output
    assert (project / "params.yaml").read_text() == before  # the valid override was not written either


def test_retrain_applies_the_override_reproduces_registers_and_summarises(project, env, first_run):
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    assert "no DVC remote configured: dvc pull skipped" in first_run.stdout
    assert "Running stage 'register'" in first_run.stdout
    params = (project / "params.yaml").read_text()
    assert re.search(r"^  max_new_tokens: 6 +# official code: 2048$", params, re.M), params  # comment kept
    assert params.startswith("# NextQuill parameters")

    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "| Path" in summary and "reports/metrics.json" in summary and "overall.rouge1" in summary, summary
    assert "Promotion decision: **promoted**" in summary
    assert "Overrides: `eval.max_new_tokens=6`" in summary

    import mlflow

    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"], env["MLFLOW_TRACKING_URI"])
    assert versions(env) == ["1"]
    assert str(client.get_model_version_by_alias("nextquill", "champion").version) == "1"
    assert not (project / "mlflow.db").exists()  # the URI from the environment, not the project default


def test_a_second_run_is_a_no_op(project, env, first_run):
    assert first_run.returncode == 0
    again = sh(project, ".ci/retrain", **env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "Running stage" not in again.stdout
    assert "Data and pipelines are up to date." in again.stdout
    assert "every override has that value already" in again.stdout
    assert versions(env) == ["1"]
    assert Path(env["GITHUB_STEP_SUMMARY"]).read_text().count("## NextQuill retraining") == 2
