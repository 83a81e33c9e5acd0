"""The embedded benchmark: deterministic, in the raw Amazon Reviews 2023 format, DPL-valid, with true spans."""

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from nextquill.config import Params, SynthesizeConfig
from nextquill.data.synthetic.compose import PREFERENCE_KINDS
from nextquill.data.synthetic.vocab import CATEGORIES
from nextquill.paths import Paths
from nextquill.stages import synthesize

REVIEW_FIELDS = ["rating", "title", "text", "images", "asin", "parent_asin", "user_id", "timestamp",
                 "helpful_vote", "verified_purchase"]
META_FIELDS = ["main_category", "title", "average_rating", "rating_number", "features", "description", "price",
               "images", "videos", "store", "categories", "details", "parent_asin", "bought_together"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The default benchmark, written by the stage, read back with its truth joined to each review."""
    root = tmp_path_factory.mktemp("bench")
    synthesize.run(Params(), Paths(root))
    raw = Paths(root).synthetic_raw
    truth = {(t["user_id"], t["parent_asin"], t["timestamp"]): t for t in read_jsonl(raw / "preference_spans.jsonl")}
    reviews, meta = [], {}
    for category in Params().synthesize.categories:
        for review in read_jsonl(raw / "review_categories" / f"{category}.jsonl"):
            reviews.append((review, truth[(review["user_id"], review["parent_asin"], review["timestamp"])]))
        meta.update({m["parent_asin"]: m for m in read_jsonl(raw / "meta_categories" / f"meta_{category}.jsonl")})
    users = {u["user_id"]: u for u in read_jsonl(raw / "users.jsonl")}
    return {"root": root, "raw": raw, "reviews": reviews, "meta": meta, "users": users,
            "truth_lines": len(truth)}


def valid(bench):
    return [(r, t) for r, t in bench["reviews"] if t["noise"] is None]


def joined_description(meta: dict) -> str:
    parts = meta["description"]
    if parts and parts[0] == "Product Description":
        parts = parts[1:]
    return " ".join(parts)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, bench):
    synthesize.run(Params(), Paths(tmp_path / "a"))
    assert tree_digest(Paths(tmp_path / "a").synthetic_raw) == tree_digest(bench["raw"])
    other = Params(synthesize=SynthesizeConfig(seed=99))
    synthesize.run(other, Paths(tmp_path / "b"))
    assert tree_digest(Paths(tmp_path / "b").synthetic_raw) != tree_digest(bench["raw"])


def test_raw_layout_and_field_names_follow_amazon_reviews_2023(bench):
    for category in Params().synthesize.categories:
        assert (bench["raw"] / "review_categories" / f"{category}.jsonl").is_file()
        assert (bench["raw"] / "meta_categories" / f"meta_{category}.jsonl").is_file()
    for review, _ in bench["reviews"]:
        assert list(review) == REVIEW_FIELDS
        assert isinstance(review["rating"], float) and isinstance(review["timestamp"], int)
    for meta in bench["meta"].values():
        assert list(meta) == META_FIELDS
        assert isinstance(meta["description"], list) and isinstance(meta["details"], dict)
    assert bench["truth_lines"] == len(bench["reviews"])  # one truth line per review, keys unique


def test_default_size_is_at_least_200_users_with_12_reviews(bench):
    per_user = Counter(r["user_id"] for r, _ in valid(bench))
    assert len(per_user) >= 200
    assert min(per_user.values()) >= 12
    assert set(per_user) == set(bench["users"])


def test_valid_reviews_pass_every_dpl_filter(bench):
    reviewers = defaultdict(set)
    seen = set()
    for review, _ in valid(bench):
        assert len(review["text"]) >= 200
        assert review["title"] and 1.0 <= review["rating"] <= 5.0 and review["timestamp"] > 0
        assert (review["user_id"], review["parent_asin"]) not in seen  # one review per user and item
        seen.add((review["user_id"], review["parent_asin"]))
        meta = bench["meta"][review["parent_asin"]]
        assert meta["title"] and meta["categories"] and meta["rating_number"] is not None
        assert 100 <= len(joined_description(meta)) <= 2000
        reviewers[review["parent_asin"]].add(review["user_id"])
    assert min(len(users) for users in reviewers.values()) >= 8


def test_noise_reviews_fail_the_filter_they_claim(bench):
    noise = [(r, t) for r, t in bench["reviews"] if t["noise"]]
    reasons = Counter(t["noise"] for _, t in noise)
    assert set(reasons) == {"short_text", "missing_title", "duplicate", "invalid_item"}
    texts = defaultdict(set)
    for review, _ in valid(bench):
        texts[review["user_id"]].add((review["parent_asin"], review["text"]))
    for review, truth in noise:
        meta = bench["meta"][review["parent_asin"]]
        if truth["noise"] == "short_text":
            assert len(review["text"]) < 200
        elif truth["noise"] == "missing_title":
            assert review["title"] == ""
        elif truth["noise"] == "duplicate":
            assert (review["parent_asin"], review["text"]) in texts[review["user_id"]]
        else:
            assert not meta["categories"] or not meta["title"] or len(joined_description(meta)) < 100
        assert truth["spans"] == []


def test_spans_are_sorted_disjoint_trimmed_and_of_known_kinds(bench):
    for review, truth in valid(bench):
        end = 0
        for span in truth["spans"]:
            assert span["kind"] in PREFERENCE_KINDS
            assert end <= span["start"] < span["end"] <= len(review["text"])
            piece = review["text"][span["start"]:span["end"]]
            assert piece == piece.strip()
            end = span["end"]


def test_lexicon_spans_hold_the_users_own_words(bench):
    for review, truth in valid(bench):
        user = bench["users"][review["user_id"]]
        for span in truth["spans"]:
            piece = review["text"][span["start"]:span["end"]]
            if span["kind"] == "intensifier":
                assert piece in user["intensifiers"]
            elif span["kind"] == "signature":
                assert piece.lower() in [s.lower() for s in user["signature_phrases"]]
            elif span["kind"] == "opener":
                assert piece == user["opener"]
            elif span["kind"] == "sign_off":
                assert piece == user["sign_off"]
            elif span["kind"] == "punctuation":
                assert piece == user["punctuation"]


def test_user_content_is_personal_and_item_content_follows_the_item(bench):
    """A user's favoured aspects recur in their reviews; an item's setting is in its description."""
    by_user = defaultdict(list)
    for review, _ in valid(bench):
        by_user[review["user_id"]].append(review["text"])
    for user_id, texts in by_user.items():
        aspects = bench["users"][user_id]["favoured_aspects"]
        share = sum(any(f"the {a}" in t.lower() for a in aspects) for t in texts) / len(texts)
        assert share > 0.8, (user_id, share)
    sign_offs = Counter(u["sign_off"] for u in bench["users"].values() if u["sign_off"])
    mostly_unique = sum(1 for n in sign_offs.values() if n == 1) / len(sign_offs)
    assert mostly_unique > 0.3
    for meta in bench["meta"].values():
        if meta["categories"]:
            assert meta["store"].split(" (")[0] in joined_description(meta)


def test_preference_share_is_substantial_but_a_minority(bench):
    stats = json.loads((Paths(bench["root"]).reports / "synthesize.json").read_text())
    for category, s in stats["categories"].items():
        assert 0.15 < s["preference_char_fraction"] < 0.6, category
        assert set(s["preference_spans_by_kind"]) == set(PREFERENCE_KINDS)
        assert s["distinct_text_fraction"] == 1.0


def test_no_single_review_beats_knowing_the_user(bench):
    """The best of 15 reviews, used as a constant prediction for 120 targets, scores well below
    predicting each target by another review of the same user (ROUGE-1 and ROUGE-L F)."""
    import random

    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    reviews = [r for r, _ in valid(bench)]
    by_user = defaultdict(list)
    for r in reviews:
        by_user[r["user_id"]].append(r["text"])
    rng = random.Random(0)
    targets = rng.sample(reviews, 120)
    candidates = [r["text"] for r in rng.sample(reviews, 15)]

    def mean(metric, pairs):
        return sum(scorer.score(t, p)[metric].fmeasure for t, p in pairs) / len(pairs)

    same_user = [(t["text"], rng.choice([x for x in by_user[t["user_id"]] if x != t["text"]])) for t in targets]
    for metric in ("rouge1", "rougeL"):
        best_constant = max(mean(metric, [(t["text"], c) for t in targets]) for c in candidates)
        assert best_constant < 0.8 * mean(metric, same_user), metric


def test_categories_have_category_vocabulary(bench):
    for meta in bench["meta"].values():
        assert meta["main_category"] in {c["main_category"] for c in CATEGORIES.values()}
