"""Generate one category of the synthetic benchmark: reviews, item metadata and the truth sidecars.

By construction every valid review passes the DPL filters with their default thresholds (text of
200+ characters, rating, title and timestamp present; items with 8+ reviewers and a 100-2000 character
description; users with at least `min_reviews` reviews), and every noise review fails one of them for
a recorded reason, so `prepare` has real rejects to count.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass, field

from nextquill.data.synthetic.compose import compose_review, meta_record, review_title, short_review
from nextquill.data.synthetic.people import Item, User, entity_rng, make_item, make_user, user_profile

MIN_TEXT_CHARS = 200  # DPL review filter
MIN_ITEM_REVIEWERS = 8  # DPL k-core on items
NOISE_REASONS = ("short_text", "missing_title", "duplicate", "invalid_item")


@dataclass
class CategoryData:
    reviews: list[dict] = field(default_factory=list)
    meta: list[dict] = field(default_factory=list)
    truth: list[dict] = field(default_factory=list)  # one per review, same order as `reviews`
    users: list[dict] = field(default_factory=list)


def _pick_items(rng: random.Random, items: list[Item], k: int) -> list[Item]:
    """k distinct items, popular ones likelier (weighted sampling without replacement, Efraimidis-Spirakis)."""
    keyed = [(rng.random() ** ((rank + 1) ** 0.5), item) for rank, item in enumerate(items)]
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0], reverse=True)[:k]]


def _timestamps(rng: random.Random, n: int, start_year: int, end_year: int) -> list[int]:
    lo = calendar.timegm((start_year, 1, 1, 0, 0, 0)) * 1000
    hi = calendar.timegm((end_year, 12, 31, 23, 59, 59)) * 1000
    return sorted(rng.sample(range(lo, hi), n))  # distinct unix milliseconds, as Amazon's `timestamp`


def _rating(rng: random.Random, user: User, item: Item) -> int:
    return max(1, min(5, round(item.quality + user.rating_bias + rng.gauss(0.0, 0.6))))


def _record(rng: random.Random, user: User, item: Item, rating: int, title: str, text: str, ts: int) -> dict:
    variant = item.parent_asin if rng.random() < 0.8 else item.parent_asin[:-1] + rng.choice("XYZ")
    return {
        "rating": float(rating),
        "title": title,
        "text": text,
        "images": [],
        "asin": variant,
        "parent_asin": item.parent_asin,
        "user_id": user.user_id,
        "timestamp": ts,
        "helpful_vote": min(int(rng.expovariate(0.5)), 250),
        "verified_purchase": rng.random() < 0.85,
    }


def _noise(
    rng: random.Random, user: User, valid: list[dict], distractors: list[Item], reason: str
) -> tuple[dict, list]:
    """One review that a DPL filter must reject, and its (empty) spans."""
    source = rng.choice(valid)
    record = dict(source, timestamp=source["timestamp"] - rng.randint(1, 30) * 86_400_000)
    if reason == "short_text":
        record["text"] = short_review(rng, int(source["rating"])).text
    elif reason == "missing_title":
        record["title"] = ""
    elif reason == "invalid_item" and distractors:
        item = rng.choice(distractors)
        record["parent_asin"] = record["asin"] = item.parent_asin
    # "duplicate": same item and text, older: the per-user de-duplication keeps the newer copy.
    return record, []


def generate_category(cfg, category: str) -> CategoryData:
    """All records of one category. `cfg` is a `SynthesizeConfig`."""
    items = [make_item(cfg.seed, category, i) for i in range(cfg.items_per_category)]
    distractors = [make_item(cfg.seed, category, i, distractor=True) for i in range(cfg.distractor_items)]
    users = [make_user(cfg.seed, category, i, cfg.min_reviews, cfg.max_reviews) for i in range(cfg.users_per_category)]
    out = CategoryData(users=[user_profile(u) for u in users])
    ratings: dict[str, list[float]] = {item.parent_asin: [] for item in items + distractors}
    for user in users:
        rng = entity_rng(cfg.seed, "reviews", category, user.user_id)
        chosen = _pick_items(rng, items, user.n_reviews)
        valid = []
        for item, ts in zip(chosen, _timestamps(rng, len(chosen), cfg.start_year, cfg.end_year), strict=True):
            rating = _rating(rng, user, item)
            review = compose_review(rng, user, item, rating, MIN_TEXT_CHARS + 20)
            record = _record(rng, user, item, rating, review_title(rng, user, rating), review.text, ts)
            valid.append(record)
            ratings[item.parent_asin].append(record["rating"])
            out.reviews.append(record)
            out.truth.append(_truth(record, category, review.spans, None))
        n_noise = sum(rng.random() < cfg.noise_reviews for _ in valid)
        for _ in range(n_noise):
            reason = rng.choice(NOISE_REASONS if distractors else NOISE_REASONS[:3])
            record, spans = _noise(rng, user, valid, distractors, reason)
            out.reviews.append(record)
            out.truth.append(_truth(record, category, spans, reason))
    rng = entity_rng(cfg.seed, "meta", category)
    out.meta = [meta_record(rng, item, ratings[item.parent_asin]) for item in items + distractors]
    _check_item_support(items, ratings, category)
    order = list(range(len(out.reviews)))
    rng.shuffle(order)  # real dumps are not grouped by user; nothing downstream may rely on order
    out.reviews = [out.reviews[i] for i in order]
    out.truth = [out.truth[i] for i in order]
    return out


def _truth(record: dict, category: str, spans: list[dict], noise: str | None) -> dict:
    return {
        "user_id": record["user_id"],
        "parent_asin": record["parent_asin"],
        "timestamp": record["timestamp"],
        "category": category,
        "field": "text",
        "noise": noise,
        "spans": spans,
    }


def _check_item_support(items: list[Item], ratings: dict[str, list[float]], category: str) -> None:
    counts = [(item.parent_asin, len(ratings[item.parent_asin])) for item in items]
    thin = [(asin, n) for asin, n in counts if n < MIN_ITEM_REVIEWERS]
    if thin:
        raise ValueError(
            f"synthesize: {len(thin)} {category} items have fewer than {MIN_ITEM_REVIEWERS} reviewers "
            f"(e.g. {thin[0][0]}: {thin[0][1]}) and would be dropped by the k-core filter; "
            "raise synthesize.users_per_category or lower synthesize.items_per_category"
        )
