"""`python -m nextquill.stages.prepare` on fixtures of every format (the command `dvc repro prepare` runs)."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from nextquill.paths import Paths
from nextquill.stages import prepare

REPO = Path(__file__).resolve().parents[2]


def jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def dpl_fixture(raw: Path) -> dict:
    meta = [{"asin": f"A{i}", "title": f"Book {i}", "description": f"About {i}."} for i in range(4)]
    jsonl(raw / "meta.jsonl", meta)
    t0 = 1_600_000_000_000  # Unix ms, September 2020
    profile = [{"asin": f"A{i}", "rating": 4.0, "text": f"Old review {i}.", "timestamp": t0 + i, "title": "Ok"}
               for i in range(3)]
    for split in ("train", "val", "test"):
        jsonl(raw / "Books" / f"{split}.jsonl", [
            {"user_id": f"u{u}", "profile": profile,
             "data": {"asin": "A3", "rating": 5.0, "text": f"{split} text of u{u}", "timestamp": t0 + 900,
                      "title": "Yes"}}
            for u in range(2)])
    return {"format": "dpl", "categories": ["Books"]}


def lamp_fixture(raw: Path) -> dict:
    for split in ("train", "dev"):
        questions = [{"id": f"{split}{i}", "input": f"Generate a headline for: story {i}",
                      "profile": [{"id": "p1", "title": "Old headline", "text": "Old story.", "date": "2014-01-02"}]}
                     for i in range(3)]
        (raw / f"{split}_questions.json").parent.mkdir(parents=True, exist_ok=True)
        (raw / f"{split}_questions.json").write_text(json.dumps(questions))
        golds = {"task": "LaMP_4", "golds": [{"id": f"{split}{i}", "output": f"Headline {i}"} for i in range(3)]}
        (raw / f"{split}_outputs.json").write_text(json.dumps(golds))
    return {"format": "lamp", "task": "LaMP_4"}


def longlamp_fixture(raw: Path) -> dict:
    for split in ("train", "val", "test"):
        jsonl(raw / f"{split}.jsonl", [
            {"input": f"Write a post about topic {i}", "output": f"My long post {i} ...",
             "profile": [{"summary": "Earlier post", "content": "I wrote this before."}]} for i in range(2)])
    return {"format": "longlamp", "task": "topic_writing"}


@pytest.mark.parametrize("fixture, expected", [
    (dpl_fixture, {"train": 2, "val": 2, "test": 2}),
    (lamp_fixture, {"train": 3, "val": 3, "test": 0}),
    (longlamp_fixture, {"train": 2, "val": 2, "test": 2}),
])
def test_stage_command_prepares_every_format(tmp_path, tiny_tokenizer, fixture, expected):
    tiny_tokenizer.save_pretrained(Paths(tmp_path).base_model)
    data = fixture(tmp_path / "data" / "raw" / "bench")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(raw_dir="data/raw/bench", max_prompt_tokens=4096, **data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    assert prepare.main(["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)]) == 0

    stats = json.loads((Paths(tmp_path).reports / "data_stats.json").read_text())
    assert stats["format"] == data["format"] and stats["examples"] == expected and stats["rejects_total"] == 0
    rows = pq.read_table(Paths(tmp_path).prepared / "train.parquet").to_pylist()
    assert all(r["n_history"] == r["n_history_available"] >= 1 for r in rows)
    assert all("None" in r["prompt_without"] and len(r["prompt_ids_without"]) < len(r["prompt_ids_with"])
               for r in rows)
    assert len({r["example_id"] for r in rows}) == len(rows)


def test_a_mistyped_data_key_fails_before_any_work(tmp_path, capsys):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["histroy_k"] = 4
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert prepare.main(["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)]) == 2
    assert "data.histroy_k = 4: unknown key" in capsys.readouterr().err
    assert not Paths(tmp_path).prepared.exists()
