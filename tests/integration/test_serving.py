"""Serving a registered tiny model: `nextquill generate`, `mlflow models serve`, and the register stage's failures.

Run: .venv/bin/python -m pytest -q tests/integration/test_serving.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from nextquill.paths import Paths

pytestmark = pytest.mark.integration
NAME = "nq-serve"
PROMPT = "<|im_start|>user\nA quiet novel about a lighthouse.<|im_end|>\n<|im_start|>assistant\n"
QUIET = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
         "TRANSFORMERS_OFFLINE": "1"}


def make_project(root: Path, base: Path, seed: int, rouge1: float) -> None:
    """The tiny base, a random (non-zero) LoRA adapter, and the reports register reads (as in test_registry)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shutil.copytree(base, root / "models" / "base", dirs_exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(root / "models" / "base")
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(root / "models" / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(root / "models" / "adapter")
    (root / "reports").mkdir(parents=True, exist_ok=True)
    overall = {"n": 10, "rouge1": rouge1, "rougeL": rouge1 / 2, "meteor": 0.1, "bleu": 1.5}
    (root / "reports" / "metrics.json").write_text(json.dumps({"overall": overall, "split": "test"}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_params(root: Path, uri: str | None, name: str = NAME) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump({"tracking": {"uri": uri}, "registry": {"model_name": name, "max_new_tokens": 5}}))
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model_dir):
    """A project with the tiny model registered as `nq-serve` version 1 (champion) in a temporary SQLite store."""
    from nextquill.config import load_params
    from nextquill.stages.register import run
    root = tmp_path_factory.mktemp("serve")
    make_project(root, tiny_model_dir, seed=1, rouge1=0.2)
    store = f"sqlite:///{root}/store.db"
    result = run(load_params(write_params(root, store)), Paths(root))
    assert result["version"] == "1" and result["champion"] == "1"
    return root, store


def test_cli_generate_matches_the_pyfunc_model(project, tmp_path, capsys):
    import mlflow
    import pandas as pd

    from nextquill import cli

    root, _ = project
    history = tmp_path / "reviews.jsonl"
    history.write_text('Loved the pacing.\n\n{"text": "Too slow for me.", "title": "Meh", "rating": 2.0}\n')
    common = ["generate", "--root", str(root), "--history-file", str(history), "--item-title", "Orbit",
              "--item-description", "A novel.", "--rating", "5.0", "--review-title", "Yes", "--max-new-tokens", "4"]
    assert cli.main([*common, "--output", str(tmp_path / "out.txt")]) == 0
    row = {"prompt": None, "history": ["Loved the pacing.", '{"text": "Too slow for me.", "title": "Meh", '
                                       '"rating": 2.0}'], "item_title": "Orbit", "item_description": "A novel.",
           "rating": 5.0, "review_title": "Yes"}
    expected = mlflow.pyfunc.load_model(f"models:/{NAME}/1").predict(pd.DataFrame([row]), {"max_new_tokens": 4})
    assert (tmp_path / "out.txt").read_text() == expected[0] + "\n"
    assert cli.main([*common, "--model-uri", f"models:/{NAME}@champion"]) == 0
    assert capsys.readouterr().out == expected[0] + "\n"


def test_cli_names_the_missing_alias_and_what_exists(project, capsys):
    from nextquill import cli

    root, _ = project
    assert cli.main(["generate", "--root", str(root), "--model-uri", f"models:/{NAME}@nope", "--prompt", "x"]) == 1
    err = capsys.readouterr().err
    assert f"models:/{NAME}@nope" in err and "champion->v1" in err and "versions: 1" in err
    assert cli.main(["generate", "--root", str(root), "--model-uri", "models:/absent@champion", "--prompt", "x"]) == 1
    assert f"registered models: {NAME}" in capsys.readouterr().err


@pytest.mark.reliability
@pytest.mark.parametrize(("content", "named"), [
    (b'Fine.\n{"text": "Good", "rating": NaN}\n', ":2.rating: expected a finite number"),
    (b'Fine.\n{"text": "unclosed\n', ":2: starts like JSON but is not valid JSON"),
    (b"ok\n\xff\xfe\n", ":2: not UTF-8"),
    (b'{"text": "ok", "stars": 5}\n', ":1: unknown field 'stars'"),
    ("\x00\x01\u200b\n".encode(), ":1: has no visible character"),
    (b"[1, 2]\n", ":1: expected a review text, a JSON string or a JSON object"),
    (b'{"title": "no text"}\n', ":1: a history object needs a string field `text`"),
])
def test_cli_names_the_bad_line_of_a_history_file(project, tmp_path, capsys, content, named):
    from nextquill import cli

    root, _ = project
    history = tmp_path / "reviews.jsonl"
    history.write_bytes(content)
    args = ["generate", "--root", str(root), "--history-file", str(history), "--item-title", "Orbit"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert f"{history}{named}" in err and "Traceback" not in err


@pytest.mark.reliability
def test_cli_refuses_bad_parameters_before_loading_the_model(project, capsys):
    from nextquill import cli

    root, _ = project
    assert cli.main(["generate", "--root", str(root), "--prompt", "x", "--max-new-tokens", "-3"]) == 1
    assert "max_new_tokens: expected an integer from 1 to 1024, got -3" in capsys.readouterr().err
    assert cli.main(["generate", "--root", str(root), "--item-title", "Orbit", "--rating", "nan"]) == 1
    assert "--rating: expected a finite number, got nan" in capsys.readouterr().err
    assert cli.main(["generate", "--root", str(root), "--item-title", "Orbit", "--rating", "9"]) == 1
    assert "row 0.rating: rating 9.0 is outside the model's rating range [1.0, 5.0]" in capsys.readouterr().err


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow models serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server and its workers (the process group this test started), SIGKILL after 20 s."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


BAD_REQUESTS = [
    ({"dataframe_records": [{"nonsense": 1}]}, "unknown field 'nonsense'"),
    ({"dataframe_records": [{"prompt": PROMPT}], "params": {"max_new_tokens": -5}}, "max_new_tokens"),
    ({"dataframe_records": [{"item_title": "Orbit", "rating": 9.0}]}, "row 0.rating"),
    ({"dataframe_records": [{"prompt": PROMPT}] * 40}, "max_request_rows"),
    ({"dataframe_records": [{"prompt": "x" * 250_000}]}, "max_request_chars"),
]


def post(port: int, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_mlflow_models_serve_answers_invocations(project, tmp_path):
    _, store = project
    port = free_port()
    bin_dir = Path(sys.executable).parent  # mlflow runs `uvicorn` from PATH, as in an activated venv
    env = {**os.environ, **QUIET, "MLFLOW_TRACKING_URI": store, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion", "--host", "127.0.0.1",
           "-p", str(port), "--env-manager", "local"]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", proc, timeout=90)
        body = json.dumps({"dataframe_records": [{"prompt": PROMPT}], "params": {"max_new_tokens": 4}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            predictions = json.loads(response.read())["predictions"]
        assert len(predictions) == 1 and isinstance(predictions[0], str)
        for payload, named in BAD_REQUESTS:  # answered 400 with the field named, never decoded
            status, answer = post(port, payload)
            assert status == 400 and answer["error_code"] == "INVALID_PARAMETER_VALUE", (payload, answer)
            assert named in answer["message"] and "Traceback" not in answer["message"], answer
    finally:
        stop(proc)
        log.close()


@pytest.mark.reliability
def test_register_fails_fast_when_the_server_is_down(tmp_path, tiny_model_dir, capsys):
    from nextquill.stages import register
    make_project(tmp_path, tiny_model_dir, seed=1, rouge1=0.2)
    params = write_params(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert register.main(["--params", str(params), "--root", str(tmp_path)]) == 1
    # It stopped at the health check, before any MLflow call that would retry: nothing was created.
    assert "unreachable" in capsys.readouterr().err
    assert not (tmp_path / "reports" / "promotion.json").exists() and not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mlartifacts").exists()


@pytest.mark.reliability
def test_two_processes_registering_one_adapter_make_one_version(tmp_path, tiny_model_dir):
    """Both stages log a model at once; the lock's re-check makes the later one reuse the earlier version."""
    import mlflow

    roots = [tmp_path / "a", tmp_path / "b"]
    make_project(roots[0], tiny_model_dir, seed=5, rouge1=0.2)
    shutil.copytree(roots[0], roots[1])
    store = f"sqlite:///{tmp_path}/store.db"
    mlflow.MlflowClient(store, store).search_experiments()  # create the tables once, before the race
    env = {**os.environ, **QUIET, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-m", "nextquill.stages.register", "--root", str(root), "--params",
                               str(write_params(root, store, "nq-race"))], env=env, stderr=subprocess.PIPE)
             for root in roots]
    errors = [proc.communicate(timeout=180)[1].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    results = [json.loads((root / "reports" / "promotion.json").read_text()) for root in roots]
    assert {r["version"] for r in results} == {"1"} and sorted(r["created"] for r in results) == [False, True]
    client = mlflow.MlflowClient(store, store)
    assert len(client.search_model_versions("name='nq-race'")) == 1
    assert {k: str(v) for k, v in client.get_registered_model("nq-race").aliases.items()} == \
        {"champion": "1", "challenger": "1"}
