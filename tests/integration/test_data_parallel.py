"""Data-parallel training on the CPU: `torchrun --nproc_per_node 2` and `accelerate launch --num_processes 2`
(gloo) train the tiny model to the same loss curve and the same adapter as one process with the same global
batch. One process runs batch 2 x accumulation 2; two run batch 1 x accumulation 2 each, so every optimizer
step sees the same four examples and the loss is normalised over the whole window of both ranks.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from nextquill.data.build import example_schema
from nextquill.paths import Paths
from tests.conftest import twin_view_rows

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TRAIN = {"objective": "nextquill", "max_steps": 3, "logging_steps": 1, "save_steps": 100, "max_examples": None,
         "learning_rate": 5e-3, "warmup_ratio": 0.0, "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj",
                                                                                                 "v_proj"]}}


def project(root: Path, tiny_model_dir: Path, tokenizer, batch_size: int) -> Path:
    shutil.copytree(tiny_model_dir, Paths(root).base_model)
    rows = twin_view_rows(tokenizer, 16, target=lambda i, rng: f"The pacing was {'hugely ' * rng.randint(0, 3)}"
                                                           f"superb {rng.random():.3f}!!")
    Paths(root).prepared.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=example_schema()), Paths(root).prepared / "train.parquet")
    Paths(root).effects.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(
        {"model": {"name_or_path": str(Paths(root).base_model)},
         "train": {**TRAIN, "batch_size": batch_size, "grad_accum": 2}}))
    return root


def run(cmd: list[str], root: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NEXTQUILL_PROGRESS": "off", "PYTHONPATH": str(REPO),
           "MASTER_ADDR": "127.0.0.1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    stage = ["-m", "nextquill.stages.train", "--params", str(root / "params.yaml"), "--root", str(root)]
    done = subprocess.run(cmd + stage, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def log(root: Path) -> list[dict[str, float]]:
    with (root / "reports" / "plots" / "train_log.csv").open() as handle:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(handle)]


def adapter(root: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Paths(root).adapter / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_model_dir, tiny_tokenizer):
    root = project(tmp_path_factory.mktemp("one-process"), tiny_model_dir, tiny_tokenizer, batch_size=2)
    run([str(BIN / "python")], root)
    return root


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_train_what_one_process_trains(single, tmp_path, tiny_model_dir, tiny_tokenizer, launcher):
    import torch

    root = project(tmp_path / launcher, tiny_model_dir, tiny_tokenizer, batch_size=1)
    if launcher == "torchrun":
        cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(_free_port())]
    else:
        cmd = [str(BIN / "accelerate"), "launch", "--config_file", str(REPO / "flows" / "launch" /
                                                                        "accelerate_cpu.yaml"),
               "--main_process_port", str(_free_port())]
    run(cmd, root)
    ours_log, reference_log = log(root), log(single)
    assert len(ours_log) == len(reference_log) == 3
    for ours, reference in zip(ours_log, reference_log, strict=True):
        # the loss, each loss term and the gradient norm (which a wrong normalisation across ranks would scale)
        for key in ("loss", "loss/ln", "loss/lp", "grad_norm"):
            assert ours[key] == pytest.approx(reference[key], rel=2e-3), (key, ours, reference)
    ours, reference = adapter(root), adapter(single)
    assert ours.keys() == reference.keys() and len(ours) > 0
    diffs = torch.cat([(ours[name] - weight).abs().flatten() for name, weight in reference.items()])
    # Adam turns float noise in near-zero gradients (a batch of 2 padded vs two of 1) into steps of up to lr on
    # those few weights; every other weight agrees to 1e-4. Measured: 99.4% within 1e-4, the largest 2.4e-3.
    assert float((diffs <= 1e-4).float().mean()) >= 0.99
    assert float(diffs.max()) <= TRAIN["learning_rate"]
    assert any(float(weight.abs().max()) > 0 for name, weight in reference.items() if "lora_B" in name)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
