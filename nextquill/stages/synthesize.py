"""Stage `synthesize`: write the embedded synthetic benchmark in the raw Amazon Reviews 2023 format.

Outputs under `data/raw/synthetic/`: `review_categories/{Category}.jsonl` and
`meta_categories/meta_{Category}.jsonl` (McAuley Lab's layout and field names), plus the truth
sidecars `preference_spans.jsonl` (one line per review: the character spans of its text that the
user's preferences produced) and `users.jsonl` (each user's latent preferences). Summary statistics
go to `reports/synthesize.json`. The same seed writes byte-identical files.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

from nextquill.config import Params
from nextquill.data.synthetic.generate import CategoryData, generate_category
from nextquill.io import atomic_dir, write_json, write_jsonl
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main


@dataclass(frozen=True)
class SynthesizeResult:
    users: int
    reviews: int
    noise_reviews: int
    items: int


def category_stats(data: CategoryData) -> dict:
    valid = [(r, t) for r, t in zip(data.reviews, data.truth, strict=True) if t["noise"] is None]
    chars = sum(len(r["text"]) for r, _ in valid)
    pref = sum(s["end"] - s["start"] for _, t in valid for s in t["spans"])
    return {
        "users": len(data.users),
        "items": sum(1 for m in data.meta if m["categories"]),
        "distractor_items": sum(1 for m in data.meta if not m["categories"]),
        "reviews": len(valid),
        "noise_reviews": dict(sorted(Counter(t["noise"] for t in data.truth if t["noise"]).items())),
        "mean_text_chars": round(chars / max(len(valid), 1), 1),
        "preference_char_fraction": round(pref / max(chars, 1), 4),
        "preference_spans_by_kind": dict(sorted(Counter(s["kind"] for _, t in valid for s in t["spans"]).items())),
        "distinct_text_fraction": round(len({r["text"] for r, _ in valid}) / max(len(valid), 1), 4),
    }


def run(params: Params, paths: Paths) -> SynthesizeResult:
    cfg = params.synthesize
    stats, truth, users = {}, [], []
    with atomic_dir(paths.synthetic_raw) as out:
        for category in cfg.categories:
            data = generate_category(cfg, category)
            write_jsonl(paths.review_file(out, category), data.reviews)
            write_jsonl(paths.meta_file(out, category), data.meta)
            truth += data.truth
            users += data.users
            stats[category] = category_stats(data)
        write_jsonl(out / "preference_spans.jsonl", truth)
        write_jsonl(out / "users.jsonl", users)
    total = {
        "users": sum(s["users"] for s in stats.values()),
        "reviews": sum(s["reviews"] for s in stats.values()),
        "noise_reviews": sum(sum(s["noise_reviews"].values()) for s in stats.values()),
        "items": sum(s["items"] for s in stats.values()),
    }
    write_json(paths.reports / "synthesize.json", {"total": total, "categories": stats, "seed": cfg.seed})
    return SynthesizeResult(**total)


def main(argv: list[str] | None = None) -> int:
    return stage_main("synthesize", run, argv)


if __name__ == "__main__":
    sys.exit(main())
