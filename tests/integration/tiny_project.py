"""A scratch copy of the project on the tiny model and a one-category synthetic benchmark, for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def sh(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                DVC_NO_ANALYTICS="1", **env)
    if "MLFLOW_TRACKING_URI" not in env:
        full.pop("MLFLOW_TRACKING_URI", None)  # the project default: mlflow.db in the project root
    return subprocess.run(args, cwd=cwd, env=full, capture_output=True, text=True, timeout=900)


def build(root: Path, model_dir: Path) -> Path:
    """Copy the pipeline into `root`, point it at the tiny model, shrink every size; git + DVC initialised."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "nextquill", root / "nextquill", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"]["name_or_path"] = str(model_dir)
    params["synthesize"].update(categories=["Books"], users_per_category=12, items_per_category=20,
                                min_reviews=18, max_reviews=20, distractor_items=1)
    # 12 users leave thin profiles: relax the profile-item threshold so the cascade keeps them all.
    params["data"].update(categories=["Books"], max_prompt_tokens=2048, profile_item_min_users=2)
    params["train"].update(max_steps=2, max_examples=16, batch_size=2, grad_accum=2)
    params["eval"].update(max_examples=6, max_new_tokens=8)
    params["compare"].update(eval_examples=6)
    params["registry"].update(max_new_tokens=8)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        assert sh(root, *cmd).returncode == 0
    return root
