"""Real faults, nothing lost: kill -9 in training, unsafe model files, and bit-for-bit reproducibility.

Run apart with `pytest -m reliability` (`make test-reliability`). The bad-input corpus tests live with the
readers (tests/unit/test_prepare_*.py) and carry the same marker; the registry and Prefect faults live with
their integration tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from nextquill.data.build import example_schema
from nextquill.paths import Paths
from tests.conftest import twin_view_rows

pytestmark = pytest.mark.reliability
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path, tiny_model_dir, tiny_tokenizer) -> Path:
    shutil.copytree(tiny_model_dir, Paths(tmp_path).base_model)
    rows = twin_view_rows(tiny_tokenizer, 16, split="test", labels=True)
    prepared = Paths(tmp_path).prepared
    prepared.mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(pa.Table.from_pylist(rows, schema=example_schema()), prepared / f"{split}.parquet")
    return tmp_path


def write_params(root: Path, **train) -> Path:
    params = {"train": {"batch_size": 2, "grad_accum": 1, "logging_steps": 1, "max_examples": None} | train,
              "eval": {"max_new_tokens": 6, "batch_size": 8, "max_examples": None}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root / "params.yaml"


def stage(root: Path, name: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"nextquill.stages.{name}", "--root", str(root),
                             "--params", str(root / "params.yaml")], cwd=root, **popen)


def test_kill_9_mid_training_then_rerun_resumes_and_finishes(root):
    write_params(root, max_steps=120, save_steps=3)
    proc = stage(root, "train", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = Paths(root).checkpoints
    deadline = time.time() + 240
    while not list(checkpoints.glob("*/checkpoint-6")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; raise max_steps"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Killed mid-epoch: no adapter (the DVC output), no half-written file anywhere the stage writes.
    assert not Paths(root).adapter.exists()
    assert not list(root.rglob("*.tmp")), "a killed stage left a temporary file behind"
    resumed = stage(root, "train", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    info = json.loads((Paths(root).adapter / "nextquill_train.json").read_text())
    assert info["resumed_from"] is not None and info["resumed_from"].startswith("checkpoint-")
    assert json.loads((Paths(root).reports / "train_metrics.json").read_text())["steps"] == 120
    from peft import PeftModel

    from nextquill.model.loading import load_model

    model = PeftModel.from_pretrained(load_model(Paths(root).base_model)[0], Paths(root).adapter)
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in model.named_parameters())
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # a finished run removes its state


def test_kill_9_while_writing_a_folder_leaves_the_old_one_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "weights").write_text("old")
    code = ("import time, sys; from nextquill.io import atomic_dir\n"
            f"with atomic_dir({str(target)!r}) as d:\n"
            "    (d / 'weights').write_text('new-partial'); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (target / "weights").read_text() == "old"  # the output is the previous version, whole
    from nextquill.io import atomic_dir

    with atomic_dir(target) as d:
        (d / "weights").write_text("new")
    assert (target / "weights").read_text() == "new"
    assert not list(tmp_path.glob(".adapter.*.tmp")), "the killed writer's temporary folder was not removed"


def test_pickle_weights_are_refused(tmp_path, tiny_model_dir):
    """A model folder with only pytorch_model.bin (a pickle) is not loaded: safetensors or nothing."""
    import torch
    from safetensors.torch import load_file

    from nextquill.model.loading import load_model

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")  # the same weights, pickled
    (folder / "model.safetensors").unlink()
    assert not list(folder.glob("*.safetensors")) and list(folder.glob("*.bin"))
    with pytest.raises(OSError, match="safetensors"):
        load_model(folder)


def test_remote_code_is_not_run_unless_params_allow_it(tmp_path, tiny_model_dir):
    """A folder whose config points at custom model code: with the default params that code never runs."""
    from nextquill.config import ModelConfig
    from nextquill.model.loading import export_base_model, load_model

    folder, marker = tmp_path / "custom", tmp_path / "remote-code-ran"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil_model.EvilConfig", "AutoModelForCausalLM": "evil_model.EvilForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil_model.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    assert ModelConfig().trust_remote_code is False
    try:
        export_base_model(ModelConfig(name_or_path=str(folder)), tmp_path / "out")
        assert type(load_model(tmp_path / "out")[0]).__name__ == "LlamaForCausalLM"
    except (ValueError, OSError):
        pass  # refusing outright is as good as loading the built-in class
    assert not marker.exists(), "custom model code from the folder was executed"


def test_no_pickle_loading_and_loopback_servers_in_the_code():
    """Safety defaults by inspection: no pickle/torch.load of artifacts, servers bind 127.0.0.1 only."""
    sources = [p for p in (REPO / "nextquill").rglob("*.py")] + list((REPO / "flows").glob("*.py"))
    for path in sources:
        text = path.read_text()
        for banned in ("pickle.load", "torch.load(", "cloudpickle", "0.0.0.0"):
            assert banned not in text, f"{path.relative_to(REPO)} uses {banned}"
    makefile = (REPO / "Makefile").read_text()
    assert "0.0.0.0" not in makefile
    for line in makefile.replace("\\\n", " ").splitlines():  # a recipe line continued with a backslash is one
        if "server start" in line or "mlflow server" in line or "mlflow ui" in line:
            assert "127.0.0.1" in line, f"Makefile starts a server without binding loopback: {line.strip()}"


def test_same_params_and_seed_give_the_same_metrics(root, tmp_path_factory):
    """Train and evaluate twice in separate processes on CPU: metrics and predictions are identical."""
    write_params(root, max_steps=3, save_steps=10)
    twin = tmp_path_factory.mktemp("twin")
    shutil.copytree(root, twin, dirs_exist_ok=True)
    for folder in (root, twin):
        for name in ("train", "evaluate"):
            proc = stage(folder, name, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out, _ = proc.communicate(timeout=600)
            assert proc.returncode == 0, out[-3000:]
    first, second = (json.loads((Paths(f).reports / "metrics.json").read_text()) for f in (root, twin))
    assert first["overall"] == second["overall"] and first["diagnostics"] == second["diagnostics"]
    assert (Paths(root).eval_dir / "predictions.jsonl").read_bytes() == \
        (Paths(twin).eval_dir / "predictions.jsonl").read_bytes()
