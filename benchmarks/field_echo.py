"""Prompt-field echoes in the comparison's outputs, and whether the verdict survives their removal.

    .venv/bin/python benchmarks/field_echo.py                       # reads comparison/runs/
    .venv/bin/python benchmarks/field_echo.py --baseline context_sft --out benchmarks/results/field_echo.json

A model trained for few steps sometimes answers in the prompt's own layout: it starts with
`- [Item Title]: ...`, then `[Item Description]: ...` or `[Output Review Text]: ...`, before (or instead of)
the review. The official protocol scores the raw output, and so does the `evaluate` stage; this script does
not change that. Per record of the methods of `compare.*` it counts the outputs that start with a field tag
and those that contain one; per method it rescores every output with the tags removed (the text after them
kept) and compares it with the baseline, rescored the same way, paired over the targets both scored (each
target's score first averaged over the method's seeds, as in `comparison/results.md`). If the tags were
what a method's lead rested on, the lead would shrink when they go. A stricter control (`review`) drops
every echoed field line whole, the item title or description copied after its marker included, and keeps
only the review (the words after a `[... Text]:` marker, and lines with no marker). Each control is
paired with the baseline over targets (bootstrap) and across matched training seeds (Student-t), as the table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nextquill.comparison.table import method_names, seed_versus  # noqa: E402
from nextquill.config import load_params  # noqa: E402
from nextquill.evaluation.metrics import example_scores  # noqa: E402
from nextquill.evaluation.statistics import paired_difference  # noqa: E402

METRICS = ("rouge1", "rougeL", "meteor")
# A line that opens with a prompt field marker: "- [Item Title]: ", "[Output Review Text]: ", "[Review 1]:".
TAG = re.compile(r"^[ \t]*-?[ \t]*\[[^\]\n]{1,40}\]:[ \t]*", re.MULTILINE)


# A marker whose field name ends in "Text" ([Output Review Text], [Review Text], [Output Text]) introduces
# review text the model wrote; every other marker introduces a copy of the prompt (title, description, rating).
REVIEW_FIELD = re.compile(r"Text\]:", re.IGNORECASE)


def strip_tags(text: str) -> str:
    """`text` without its field markers; the words after each marker stay."""
    return TAG.sub("", text)


def review_only(text: str) -> str:
    """`text` without the lines that echo a prompt field: a line opening with a marker goes whole (the item's
    title or description copied from the prompt), except a review-text marker, whose words stay."""
    kept = []
    for line in text.splitlines():
        tag = TAG.match(line)
        if tag is None:
            kept.append(line)
        elif REVIEW_FIELD.search(tag.group(0)):
            kept.append(line[tag.end():])
    return "\n".join(kept)


CLEANERS = {"raw": lambda text: text, "stripped": strip_tags, "review": review_only}


def load_records(runs: Path, methods: list[str]) -> dict[str, dict[str, list[dict]]]:
    """{method: {"seed42" or "-": [prediction rows]}} for the record folders of `methods` under `runs`."""
    found: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for path in sorted(runs.glob("**/predictions.jsonl")):
        rel = path.parent.relative_to(runs).parts
        method, seed = (rel[0], rel[1]) if len(rel) == 2 else (rel[0], "-")
        if method in methods:
            found[method][seed] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


def rescore(seeds: dict[str, list[dict]], kind: str) -> dict[int | None, dict]:
    """{seed (None for a zero-shot run): {"predictions": rows of example_id and METRICS}} on the outputs
    cleaned by `CLEANERS[kind]`: the shape of a comparison record, for `table.seed_versus`."""
    out = {}
    for seed, rows in seeds.items():
        hyps = [CLEANERS[kind](r["prediction"]) for r in rows]
        scores = example_scores(hyps, [r["reference"] for r in rows])
        rows = [{"example_id": r["example_id"], **{m: sc[m] for m in METRICS}}
                for r, sc in zip(rows, scores, strict=True)]
        out[None if seed == "-" else int(seed.removeprefix("seed"))] = {"predictions": rows}
    return out


def per_target(runs: dict[int | None, dict]) -> dict[str, dict[str, float]]:
    """{example_id: {metric: score averaged over the seeds}} from `rescore`'s runs."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(METRICS, 0.0))
    counts: dict[str, int] = defaultdict(int)
    for run in runs.values():
        for row in run["predictions"]:
            counts[row["example_id"]] += 1
            for m in METRICS:
                sums[row["example_id"]][m] += row[m]
    return {i: {m: s[m] / counts[i] for m in METRICS} for i, s in sums.items()}


def echo_counts(rows: list[dict]) -> dict[str, float]:
    """Echoes, and the length and ROUGE-1 precision / recall of the raw outputs: a longer output gains recall
    (and METEOR, which weights recall 9:1) whether or not its extra words are the user's."""
    from rouge_score import rouge_scorer

    starts = sum(bool(TAG.match(r["prediction"])) for r in rows)
    contains = sum(bool(TAG.search(r["prediction"])) for r in rows)
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    r1 = [scorer.score(r["reference"], r["prediction"])["rouge1"] for r in rows]
    return {"outputs": len(rows), "starts_with_a_tag": starts, "contains_a_tag": contains,
            "words": sum(len(r["prediction"].split()) for r in rows) / len(rows),
            "reference_words": sum(len(r["reference"].split()) for r in rows) / len(rows),
            "rouge1_precision": sum(x.precision for x in r1) / len(r1),
            "rouge1_recall": sum(x.recall for x in r1) / len(r1)}


def compare(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict[str, dict]:
    ids = sorted(a.keys() & b.keys())
    return {m: paired_difference([a[i][m] for i in ids], [b[i][m] for i in ids]) for m in METRICS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("comparison/runs"))
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="its compare.* names the methods")
    p.add_argument("--baseline", default="context_sft")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/field_echo.json"))
    args = p.parse_args()
    records = load_records(args.runs, method_names(load_params(args.params)))
    if args.baseline not in records:
        raise SystemExit(f"{args.runs}: no record of the baseline {args.baseline!r} (found: {sorted(records)})")
    base = {kind: rescore(records[args.baseline], kind) for kind in CLEANERS}
    result = {"baseline": args.baseline, "runs": str(args.runs), "methods": {}}
    for method, seeds in sorted(records.items()):
        entry = {"echo": {seed: echo_counts(rows) for seed, rows in sorted(seeds.items())}}
        if method != args.baseline:
            for kind in CLEANERS:
                runs = rescore(seeds, kind)
                entry[f"vs_baseline_{kind}"] = compare(per_target(runs), per_target(base[kind]))
                entry[f"vs_baseline_{kind}_seeds"] = seed_versus(runs, base[kind])
        result["methods"][method] = entry
        echo = ", ".join(f"{s} {c['starts_with_a_tag']}/{c['outputs']} ({c['words']:.0f} words, R-1 P "
                         f"{c['rouge1_precision']:.3f} R {c['rouge1_recall']:.3f})" for s, c in entry["echo"].items())
        line = f"{method:28s} starts with a tag: {echo}"
        if "vs_baseline_raw" in entry:
            for metric in METRICS:
                line += f"\n    {metric} - {args.baseline}: " + "; ".join(
                    f"{kind} {d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
                    + (f" seeds [{x['ci_low']:+.4f}, {x['ci_high']:+.4f}]"
                       if (x := (entry[f"vs_baseline_{kind}_seeds"] or {}).get(metric)) else "")
                    for kind in CLEANERS if (d := entry[f"vs_baseline_{kind}"][metric]))
        print(line)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
