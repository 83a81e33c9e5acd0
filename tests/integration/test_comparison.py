"""The comparison on the tiny model: every method, seeds, the table's statistics, and through DVC a fresh clone
that re-runs nothing finished and runs what is new."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from nextquill.comparison.methods import METHODS, RUNS, WORK
from tests.integration.tiny_project import REPO, build, sh

pytestmark = pytest.mark.integration
ZERO_SHOT = [n for n, m in METHODS.items() if m.kind == "zero_shot"]
TRAINED = [n for n, m in METHODS.items() if m.kind == "trained"]
DERIVED = [n for n, m in METHODS.items() if m.kind == "derived"]


def _set_compare(root: Path, **compare) -> Path:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["compare"].update(compare)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root / "params.yaml"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny project with its base model, embedded benchmark and prepared data (the main pipeline's stages)."""
    from nextquill.config import load_params
    from nextquill.paths import Paths
    from nextquill.stages import base_model, prepare, synthesize

    root = build(tmp_path_factory.mktemp("compare"), tiny_model_dir)
    _set_compare(root, oppu_users=3, oppu_epochs=1.0, seeds=[42], reading_seeds=[42])
    params, paths = load_params(root / "params.yaml"), Paths(root)
    for stage in (base_model, synthesize, prepare):
        stage.run(params, paths)
    return root


def _copy(prepared: Path, to: Path) -> Path:
    shutil.copytree(prepared, to, symlinks=True)
    return to


def test_the_baselines_of_the_paper_run_and_are_paired_with_context_sft(prepared, tmp_path):
    """OPPU, the profile summary and the retrieval-augmented base: each scored and paired with ContextSFT."""
    from nextquill.compare import main

    root = _copy(prepared, tmp_path / "p")
    params_file = _set_compare(root, zero_shot=["base_retrieval"], methods=["context_sft", "summary"], readings=[],
                               derived=["oppu"])
    args = ["--root", str(root), "--params", str(params_file)]
    for name in ("base_retrieval", "context_sft", "summary", "oppu"):
        assert main(["run", name, *args]) == 0, name
    assert main(["table", *args]) == 0
    rows = {m["method"]: m for m in json.loads((root / "comparison" / "results.json").read_text())["methods"]}
    for name in ("base_retrieval", "summary", "oppu"):
        paired = rows[name]["metrics"]["rouge1"]["vs_context_sft"]
        assert paired["ci_low"] <= paired["diff"] <= paired["ci_high"] and 0 < paired["p_value"] <= 1, name
    assert rows["oppu"]["n_targets"] == 3 and rows["context_sft"]["n_targets"] == 6  # one target per sampled user
    oppu = json.loads((root / RUNS / "oppu" / "seed42" / "oppu.json").read_text())
    assert oppu["users"] == 3 and all(u["steps"] > 0 and u["examples"] == 8 for u in oppu["per_user"])
    summaries = [json.loads(x) for x in (root / RUNS / "summary" / "seed42" / "summaries.jsonl").read_text()
                 .splitlines()]
    assert len(summaries) == 12 and len({s["user_id"] for s in summaries}) == 12  # one profile per user, once
    import pyarrow.parquet as pq

    from nextquill.model.summary import LABEL

    test_rows = pq.read_table(root / WORK / "summary" / "seed42" / "data" / "prepared" / "test.parquet",
                              columns=["prompt_with", "n_history"]).to_pylist()
    assert all(LABEL in r["prompt_with"] and r["n_history"] == 1 for r in test_rows)
    retrieval = json.loads((root / RUNS / "base_retrieval" / "metrics.json").read_text())
    assert retrieval["model"] == "base" and retrieval["view"] == "with_history"


def _dvc_project(prepared: Path, to: Path) -> Path:
    """A copy of the prepared tiny project with the comparison pipeline; the main stages recorded in dvc.lock."""
    root = _copy(prepared, to)
    # The main pipeline's stages ran in-process (the fixture): record them in dvc.lock instead of re-running.
    assert sh(root, "dvc", "commit", "-f", "base_model", "synthesize", "prepare").returncode == 0
    (root / "comparison").mkdir()
    shutil.copy(REPO / "comparison" / "dvc.yaml", root / "comparison" / "dvc.yaml")
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    return root


@pytest.mark.slow
def test_dvc_repro_of_every_method_gives_each_a_paired_ci(prepared, tmp_path):
    root = _dvc_project(prepared, tmp_path / "p")
    _set_compare(root, zero_shot=ZERO_SHOT, methods=TRAINED, readings=[], derived=DERIVED, seeds=[42])
    done = sh(root, "dvc", "repro", "comparison/dvc.yaml")
    assert done.returncode == 0, done.stderr + done.stdout
    table = json.loads((root / "comparison" / "results.json").read_text())
    rows = {m["method"]: m for m in table["methods"]}
    assert list(rows) == [*ZERO_SHOT, *TRAINED, *DERIVED]
    for name, row in rows.items():
        assert row["status"] == "complete" and row["n_targets"] > 0, name
        for metric in ("rouge1", "rougeL", "meteor", "bleu"):
            paired = row["metrics"][metric]["vs_context_sft"]
            assert paired["ci_low"] <= paired["diff"] <= paired["ci_high"] and 0 < paired["p_value"] <= 1, name
    assert rows["base_history"]["seeds"] == [] and rows["sft"]["seeds"] == [42]
    record = json.loads((root / RUNS / "nextquill" / "seed42" / "run.json").read_text())
    assert record["params"]["train.seed"] == 42 and record["overrides"]["train.seed"] == 42
    assert set(record["seconds"]) == {"train", "evaluate"} and len(record["params_digest"]) == 16
    text = (root / "comparison" / "results.md").read_text()
    assert all(METHODS[n].label in text for n in METHODS) and "not run" not in text


def test_dvc_repro_keeps_records_in_git_and_a_fresh_clone_reruns_only_what_is_new(prepared, tmp_path):
    root = _dvc_project(prepared, tmp_path / "origin")
    _set_compare(root, zero_shot=["base_history"], methods=["context_sft"], readings=[],
                 derived=["context_sft_steering"], seeds=[42])
    first = sh(root, "dvc", "repro", "comparison/dvc.yaml")
    assert first.returncode == 0, first.stderr + first.stdout
    table = json.loads((root / "comparison" / "results.json").read_text())
    assert [m["method"] for m in table["methods"]] == ["base_history", "context_sft", "context_sft_steering"]
    assert all(m["status"] == "complete" for m in table["methods"])
    # The records are small files for git; the working folders (adapters) are DVC's.
    ignored = sh(root, "git", "check-ignore", "comparison/work/context_sft/seed42", "comparison/runs").stdout
    assert "comparison/work/context_sft/seed42" in ignored and "comparison/runs" not in ignored
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"]):
        assert sh(root, *cmd).returncode == 0
    clone = tmp_path / "clone"
    assert sh(tmp_path, "git", "clone", "-q", str(root), str(clone)).returncode == 0
    assert not (clone / "comparison" / "work").exists() and (clone / RUNS / "context_sft" / "seed42").is_dir()
    again = sh(clone, "dvc", "repro", "--allow-missing", "comparison/dvc.yaml")
    assert again.returncode == 0, again.stderr + again.stdout
    assert "Running stage" not in again.stdout, again.stdout
    # A new seed runs that seed's stages, and the table; nothing already recorded runs again.
    assert sh(clone, "dvc", "repro", "prepare").returncode == 0  # the shared inputs (deterministic: same hashes)
    _set_compare(clone, seeds=[42, 43], reading_seeds=[42, 43])  # derived methods run at the reading seeds
    more = sh(clone, "dvc", "repro", "--allow-missing", "comparison/dvc.yaml")
    assert more.returncode == 0, more.stderr + more.stdout
    ran = sorted(line.split("'")[1] for line in more.stdout.splitlines() if line.startswith("Running stage"))
    assert ran == ["comparison/dvc.yaml:derived@context_sft_steering-43", "comparison/dvc.yaml:table",
                   "comparison/dvc.yaml:trained@context_sft-43"], more.stdout
    rows = {m["method"]: m for m in json.loads((clone / "comparison" / "results.json").read_text())["methods"]}
    assert rows["context_sft"]["seeds"] == [42, 43] and rows["base_history"]["status"] == "complete"
    # A run whose source run is not in this workspace stops with what to do.
    _set_compare(clone, steering=3.0)
    broken = sh(clone, "dvc", "repro", "-s", "--allow-missing",
                "comparison/dvc.yaml:derived@context_sft_steering-42")
    assert broken.returncode != 0 and "comparison/work/context_sft/seed42" in broken.stderr + broken.stdout
