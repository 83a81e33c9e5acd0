"""The `nextquill` flow against a tiny DVC project of four trivial stages, on a temporary Prefect server.

Run: .venv/bin/python -m pytest -q tests/integration/test_prefect_flow.py
The stages are python one-liners (through `stage.py`) that read params.yaml, so the test is about the wiring:
DVC decides what runs, overrides land in params.yaml, failures fail the flow run with the stage's message.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "flows"))
from nextquill_flow import nextquill  # noqa: E402

pytestmark = pytest.mark.integration

PARAMS = """\
# A tiny NextQuill project: valid params.yaml sections, four trivial stages.
base:
  seed: 42              # read by prepare
train:
  max_steps: 1          # read by train
eval:
  max_examples: 2       # read by evaluate
promote:
  min_delta: 0.0        # register fails above 0.5
"""
STAGE_PY = """\
import json, os, sys
from pathlib import Path
import yaml
name, p = sys.argv[1], yaml.safe_load(Path("params.yaml").read_text())
value = {"prepare": p["base"]["seed"], "train": p["train"]["max_steps"], "evaluate": p["eval"]["max_examples"],
         "register": p["promote"]["min_delta"]}[name]
print(f"{name} read {value}")
if name == "register" and value > 0.5:
    with open("register.attempts", "a") as log:
        print("attempt", file=log)
    sys.exit(f"promotion gate broke: min_delta {value} is out of range")  # to stderr, exit 1
out = Path("reports/promotion.json" if name == "register" else f"out/{name}.json")
out.parent.mkdir(exist_ok=True)
env = {k: os.environ.get(k) for k in ("NEXTQUILL_ORCHESTRATOR", "NEXTQUILL_RUN_TAGS")}
out.write_text(json.dumps({"value": value, **env}))
"""
DVC_YAML = """\
stages:
  prepare:
    cmd: python stage.py prepare
    deps: [stage.py]
    params: [base.seed]
    outs: [out/prepare.json]
  train:
    cmd: python stage.py train
    deps: [out/prepare.json]
    params: [train.max_steps]
    outs: [out/train.json]
  evaluate:
    cmd: python stage.py evaluate
    deps: [out/train.json]
    params: [eval.max_examples]
    outs: [out/evaluate.json]
  register:
    cmd: python stage.py register
    deps: [out/train.json]
    params: [promote.min_delta]
    metrics:
      - reports/promotion.json:
          cache: false
"""
ALL = ["prepare", "train", "evaluate", "register"]


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # else a "database is locked" traceback
    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def project(tmp_path) -> Path:
    for name, text in (("params.yaml", PARAMS), ("stage.py", STAGE_PY), ("dvc.yaml", DVC_YAML)):
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    Repo.init(str(tmp_path)).close()
    return tmp_path


def repro_all(root: Path) -> list[str]:
    with contextlib.chdir(root), Repo(str(root)) as repo:
        return [s.addressing for s in repo.reproduce()]


def run_log(flow_run_id) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def test_flow_runs_every_stage_then_dvc_repro_is_a_no_op(project):
    state = nextquill(root=str(project), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages_run"] == ALL and result["params_changed"] == []
    promotion = result["promotion"]
    assert promotion["NEXTQUILL_ORCHESTRATOR"] == "prefect"
    assert json.loads(promotion["NEXTQUILL_RUN_TAGS"]) == {
        "prefect.flow_run_id": str(state.state_details.flow_run_id), "prefect.deployment": None,
        "prefect.overrides": "{}"}
    assert "NEXTQUILL_RUN_TAGS" not in os.environ  # restored after the run
    assert repro_all(project) == []
    logs = run_log(state.state_details.flow_run_id)
    assert "Running stage 'train'" in logs and "train read 1" in logs  # DVC's lines and the command's own output
    assert "evaluate: ran evaluate" in logs


def test_override_lands_in_params_and_reruns_only_the_dependent_stage(project):
    assert nextquill(root=str(project))["stages_run"] == ALL
    result = nextquill(overrides={"eval.max_examples": "5"}, root=str(project))
    assert result["stages_run"] == ["evaluate"]
    assert result["overrides"] == {"eval.max_examples": 5}  # validated: the string became an int
    assert "  max_examples: 5       # read by evaluate\n" in (project / "params.yaml").read_text()
    assert json.loads((project / "out" / "evaluate.json").read_text())["value"] == 5
    assert repro_all(project) == []
    assert nextquill(overrides={"eval.max_examples": 5}, root=str(project))["stages_run"] == []


@pytest.mark.parametrize(("overrides", "stages", "expected"), [
    ({"train.max_stepz": 2}, None, "train.max_stepz"),
    ({"train.max_steps": "many"}, None, "train.max_steps = 'many'"),
    ({}, ["train", "evaulate"], "allowed stages, in order: prepare, train, evaluate, register"),
])
@pytest.mark.reliability
def test_bad_input_fails_the_run_before_any_stage(project, overrides, stages, expected):
    params = (project / "params.yaml").read_bytes()
    state = nextquill(overrides=overrides, stages=stages, root=str(project), return_state=True)
    assert state.is_failed()
    assert expected in state.message
    assert not (project / "dvc.lock").exists() and (project / "params.yaml").read_bytes() == params


@pytest.mark.reliability
def test_failing_stage_fails_the_run_with_its_stderr_and_no_retry(project):
    state = nextquill(overrides={"promote.min_delta": 0.9}, root=str(project), return_state=True)
    assert state.is_failed()
    assert "stage 'register' failed" in state.message and "min_delta 0.9 is out of range" in state.message
    with pytest.raises(RuntimeError, match="promotion gate broke"):
        state.result()
    # A stage's own failure is not retried: the command ran once.
    assert (project / "register.attempts").read_text().splitlines() == ["attempt"]
    lock = yaml.safe_load((project / "dvc.lock").read_text())  # the stages before it ran and were recorded
    assert set(lock["stages"]) == {"prepare", "train", "evaluate"}


@pytest.mark.reliability
def test_unreachable_api_fails_fast_with_a_clear_error(project):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO / 'flows')!r})
        from nextquill_flow import nextquill
        nextquill(root={str(project)!r})
    """)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert f"127.0.0.1:{port}" in run.stderr and ("Failed to reach API" in run.stderr or "ConnectError" in run.stderr)
    assert not (project / "dvc.lock").exists()


def test_the_real_chain_through_the_flow_registers_a_champion(tmp_path, tiny_model_dir):
    """base_model → ... → register with the tiny model, driven by the flow: same artifacts as `dvc repro`."""
    import mlflow

    from tests.integration.tiny_project import build, sh

    root = build(tmp_path, tiny_model_dir)
    env = {"MLFLOW_TRACKING_URI": os.environ.pop("MLFLOW_TRACKING_URI", "")}
    try:
        state = nextquill(root=str(root), overrides={"eval.max_new_tokens": 6}, return_state=True)
    finally:
        if env["MLFLOW_TRACKING_URI"]:
            os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages_run"][-2:] == ["evaluate", "register"] and "train" in result["stages_run"]
    assert result["promotion"]["decision"] == "promoted"
    for out in ("models/adapter/adapter_model.safetensors", "reports/metrics.json", "reports/token_effects.html",
                "data/eval/predictions.jsonl", "reports/promotion.json"):
        assert (root / out).is_file(), out
    store = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(store, store)  # both: another test may have set a global registry URI
    assert str(client.get_model_version_by_alias("nextquill", "champion").version) == "1"
    run = client.get_run(result["promotion"]["run_id"])
    assert run.data.tags["nextquill.pipeline"] == "prefect"
    assert run.data.tags["prefect.flow_run_id"] == str(state.state_details.flow_run_id)
    assert run.data.params["eval.max_new_tokens"] == "6"  # the deployment parameter, recorded
    again = sh(root, "dvc", "repro")
    assert again.returncode == 0 and "Running stage" not in again.stdout  # one implementation: nothing stale
