"""`prepare` on small Amazon Reviews 2023 files written here: the DPL protocol, bad input, the views."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nextquill.config import DataConfig, Params
from nextquill.paths import Paths
from nextquill.stages import prepare

DESC = "A description long enough to pass the DPL meta filter, which keeps items with 100 to 2000 characters of it."
SMALL = dict(categories=("Books",), min_review_chars=20, item_min_users=2, user_min_reviews=5, user_max_reviews=50,
             held_out=3, profile_item_min_users=1, profile_min_reviews=2, max_reject_fraction=0.5,
             max_prompt_tokens=4096)


T0 = 1_600_000_000_000  # fixture timestamps are offsets from this moment (Unix ms, September 2020)


def review(user: str, item: str, ts: int, text: str | None = None, **extra) -> dict:
    row = {"rating": 4.0, "title": f"title {user} {item}", "text": text or f"Review of {item} by {user}, at {ts}.",
           "images": [], "asin": item, "parent_asin": item, "user_id": user, "timestamp": T0 + ts,
           "helpful_vote": 0, "verified_purchase": True}
    return row | extra


def meta(item: str, **extra) -> dict:
    return {"main_category": "Books", "title": f"Item {item}", "average_rating": 4.0, "rating_number": 10,
            "features": [], "description": ["Product Description", DESC], "price": None, "images": [], "videos": [],
            "store": "s", "categories": ["Books"], "details": {}, "parent_asin": item, "bought_together": None} | extra


def base_corpus() -> list[dict]:
    """Users U1..U3 review items I0..I5 in order: 6 reviews each, every item with 3 reviewers."""
    return [review(f"U{u}", f"I{i}", 1000 * u + 10 * i) for u in range(1, 4) for i in range(6)]


def write(root: Path, reviews: list, metas: list) -> None:
    raw = root / "data" / "raw" / "test"
    for sub, name, rows in (("review_categories", "Books.jsonl", reviews), ("meta_categories", "meta_Books.jsonl",
                                                                           metas)):
        (raw / sub).mkdir(parents=True, exist_ok=True)
        lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows]
        (raw / sub / name).write_bytes(b"\n".join(lines) + b"\n")


@pytest.fixture
def root(tmp_path, tiny_tokenizer) -> Path:
    tiny_tokenizer.save_pretrained(Paths(tmp_path).base_model)
    return tmp_path


def run(root: Path, **overrides) -> dict:
    cfg = DataConfig(raw_dir="data/raw/test", **(SMALL | overrides))
    prepare.run(Params(data=cfg), Paths(root))
    return json.loads((Paths(root).reports / "data_stats.json").read_text())


def examples(root: Path, split: str) -> list[dict]:
    return pq.read_table(Paths(root).prepared / f"{split}.parquet").to_pylist()


def test_dpl_split_history_and_views(root):
    write(root, base_corpus(), [meta(f"I{i}") for i in range(6)])
    stats = run(root)
    assert stats["examples"] == {"train": 3, "val": 3, "test": 3} and stats["users"] == 3
    test = {e["user_id"]: e for e in examples(root, "test")}["U2"]
    assert test["item_id"] == "I5" and test["n_history_available"] == 5 and test["n_history"] == 5
    val = {e["user_id"]: e for e in examples(root, "val")}["U2"]
    assert val["item_id"] == "I4" and val["n_history_available"] == 4
    train = {e["user_id"]: e for e in examples(root, "train")}["U2"]
    assert train["item_id"] == "I3" and train["n_history_available"] == 3
    # Newest history first; the description's "Product Description" header is gone.
    prompt = test["prompt_with"]
    assert prompt.index("Review of I4 by U2") < prompt.index("Review of I3 by U2") < prompt.index("Review of I0")
    assert "Product Description" not in prompt and DESC in prompt
    # The no-history view is the same prompt with the block replaced by the literal.
    assert "[User's Past Reviews]:\nNone\n[Output Review Rating]: 4.0" in test["prompt_without"]
    assert "Review of" not in test["prompt_without"]
    assert test["prompt_with"].endswith("<|im_start|>assistant\n")  # chat template applied
    assert test["target"] == "Review of I5 by U2, at 2050." and test["pref_labels"] is None


@pytest.mark.reliability
def test_bad_records_are_rejected_or_dropped_with_file_line_and_reason(root):
    rows = base_corpus() + [
        b'{"rating": 4.0, "title": "broken',  # line 19
        {k: v for k, v in review("U1", "I2", 5).items() if k != "text"},  # 20: missing field
        review("U1", "I2", 6, rating="five"),  # 21: wrong type
        review("U1", "NOPE", 7),  # 22: unknown item
        review("U2", "I1", 8, text="   "),  # 23: empty text
        review("U3", "I0", 2, text="Review of I0 by U3, at 3000."),  # 24: older duplicate of line 13
        b'{"user_id": "U1", "text": "\xff\xfe bad bytes"}',  # 25: invalid UTF-8
        review("U2", "I3", 9, text="too short"),  # 26: short text
        review("U1", "I1", 11, title=""),  # 27: missing title
    ]
    write(root, rows, [meta(f"I{i}") for i in range(6)] + [meta("I9", description=["short"])])
    stats = run(root)
    review_file = str(Paths(root).root / "data/raw/test/review_categories/Books.jsonl")
    rejects = [json.loads(x) for x in (Paths(root).prepared / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (19, "malformed_json"), (20, "missing_field"), (21, "wrong_type"), (25, "invalid_utf8")]
    assert all(r["file"] == review_file for r in rejects)
    assert "rating: expected a number, got str 'five'" in rejects[2]["detail"]
    dropped = pq.read_table(Paths(root).prepared / "dropped.parquet").to_pylist()
    assert {(d["line"], d["reason"]) for d in dropped} == {
        (22, "unknown_item"), (23, "empty_text"), (24, "duplicate"), (26, "short_text"), (27, "missing_title"),
        (7, "meta_short_description")}
    assert stats["rejects"] == {"invalid_utf8": 1, "malformed_json": 1, "missing_field": 1, "wrong_type": 1}
    # Nothing lost: every input line is kept, rejected or dropped.
    kept = stats["protocol"]["kept_reviews"] + 6  # the kept reviews plus the six valid meta lines
    assert kept + stats["rejects_total"] + len(dropped) == stats["input_records"] == 27 + 7
    assert stats["examples"]["test"] == 3


def test_kcore_iterates_until_stable(root):
    """I6 has one reviewer (U4): it goes, U4 falls to 4 reviews and goes too, in a second round."""
    rows = base_corpus() + [review("U4", f"I{i}", 5000 + i) for i in (0, 1, 2, 6)] + [review("U4", "I3", 5010)]
    write(root, rows, [meta(f"I{i}") for i in range(7)])
    stats = run(root)
    assert stats["protocol"]["dropped"] == {"kcore_item": 1, "kcore_user_few": 4}
    assert stats["protocol"]["kcore_rounds"] == 2
    assert {e["user_id"] for e in examples(root, "test")} == {"U1", "U2", "U3"}


def test_history_is_cut_to_the_budget_newest_kept(root):
    write(root, base_corpus(), [meta(f"I{i}") for i in range(6)])
    full = run(root)
    assert full["history_length"]["max"] == 5
    budget = min(len(e["prompt_ids_with"]) for e in examples(root, "test")) - 60
    tight = run(root, max_prompt_tokens=budget)
    for example in examples(root, "test"):
        assert len(example["prompt_ids_with"]) <= budget
        assert 0 < example["n_history"] < 5
        assert f"Review of I4 by {example['user_id']}" in example["prompt_with"]  # the newest is kept
    assert tight["truncation"]["history_cut_by_budget"] >= 3  # at least every test example


def test_long_targets_are_cut_and_counted(root):
    rows = base_corpus()
    rows[5] = review("U1", "I5", 1050, text="word " * 200)
    write(root, rows, [meta(f"I{i}") for i in range(6)])
    stats = run(root, max_target_tokens=32)
    assert stats["truncation"]["target_truncated"] == 1
    long = {e["user_id"]: e for e in examples(root, "test")}["U1"]
    assert len(long["target_ids"]) == 32 and long["target_truncated"]


@pytest.mark.reliability
def test_too_many_rejects_fail_the_stage_and_name_the_rejects_file(root):
    write(root, base_corpus() + [b"{not json"] * 30, [meta(f"I{i}") for i in range(6)])
    with pytest.raises(prepare.TooManyRejects, match=r"malformed_json: 30.*max_reject_fraction = 0.1.*rejects.jsonl"):
        run(root, max_reject_fraction=0.1)


def test_gzip_raw_files_are_read(root):
    import gzip

    write(root, base_corpus(), [meta(f"I{i}") for i in range(6)])
    for path in (root / "data" / "raw" / "test").rglob("*.jsonl"):
        path.with_suffix(".jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    assert run(root)["examples"]["test"] == 3


def test_relevance_selection_ranks_each_users_history(root):
    """Items alike in text: the item reviewed with the target's words ranks first, not the newest."""
    rows = base_corpus()
    rows[1] = review("U1", "I1", 1010, text="A space opera with starships and alien empires at war.")
    rows[5] = review("U1", "I5", 1050, text="Starships and alien empires at war again, a space opera.")
    metas = [meta(f"I{i}") for i in range(6)]
    metas[5] = meta("I5", title="Starship Empires: a space opera")
    write(root, rows, metas)
    stats = run(root, history_selection="relevance", history_k=2)
    test = {e["user_id"]: e for e in examples(root, "test")}["U1"]
    first = test["prompt_with"].split("[Review 1]:")[1].split("[Review 2]:")[0]
    assert "space opera" in first  # I1's review, though I4 is newer
    assert stats["history_length"]["max"] == 2
