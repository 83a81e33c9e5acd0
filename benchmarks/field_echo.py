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
what a method's lead rested on, the lead would shrink when they go.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nextquill.comparison.table import method_names  # noqa: E402
from nextquill.config import load_params  # noqa: E402
from nextquill.evaluation.metrics import example_scores  # noqa: E402
from nextquill.evaluation.statistics import paired_difference  # noqa: E402

METRICS = ("rouge1", "rougeL", "meteor")
# A line that opens with a prompt field marker: "- [Item Title]: ", "[Output Review Text]: ", "[Review 1]:".
TAG = re.compile(r"^[ \t]*-?[ \t]*\[[^\]\n]{1,40}\]:[ \t]*", re.MULTILINE)


def strip_tags(text: str) -> str:
    """`text` without its field markers; the words after each marker stay."""
    return TAG.sub("", text)


def load_records(runs: Path, methods: list[str]) -> dict[str, dict[str, list[dict]]]:
    """{method: {"seed42" or "-": [prediction rows]}} for the record folders of `methods` under `runs`."""
    found: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for path in sorted(runs.glob("**/predictions.jsonl")):
        rel = path.parent.relative_to(runs).parts
        method, seed = (rel[0], rel[1]) if len(rel) == 2 else (rel[0], "-")
        if method in methods:
            found[method][seed] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


def per_target(seeds: dict[str, list[dict]], stripped: bool) -> dict[str, dict[str, float]]:
    """{example_id: {metric: score averaged over the seeds}}, scored on raw or tag-stripped outputs."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(METRICS, 0.0))
    counts: dict[str, int] = defaultdict(int)
    for rows in seeds.values():
        hyps = [strip_tags(r["prediction"]) if stripped else r["prediction"] for r in rows]
        for row, score in zip(rows, example_scores(hyps, [r["reference"] for r in rows]), strict=True):
            counts[row["example_id"]] += 1
            for m in METRICS:
                sums[row["example_id"]][m] += score[m]
    return {i: {m: s[m] / counts[i] for m in METRICS} for i, s in sums.items()}


def echo_counts(rows: list[dict]) -> dict[str, int]:
    starts = sum(bool(TAG.match(r["prediction"])) for r in rows)
    contains = sum(bool(TAG.search(r["prediction"])) for r in rows)
    return {"outputs": len(rows), "starts_with_a_tag": starts, "contains_a_tag": contains}


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
    base = {kind: per_target(records[args.baseline], kind == "stripped") for kind in ("raw", "stripped")}
    result = {"baseline": args.baseline, "runs": str(args.runs), "methods": {}}
    for method, seeds in sorted(records.items()):
        entry = {"echo": {seed: echo_counts(rows) for seed, rows in sorted(seeds.items())}}
        if method != args.baseline:
            for kind in ("raw", "stripped"):
                entry[f"vs_baseline_{kind}"] = compare(per_target(seeds, kind == "stripped"), base[kind])
        result["methods"][method] = entry
        echo = ", ".join(f"{s} {c['starts_with_a_tag']}/{c['outputs']}" for s, c in entry["echo"].items())
        line = f"{method:28s} starts with a tag: {echo}"
        if "vs_baseline_raw" in entry:
            raw, clean = entry["vs_baseline_raw"]["rouge1"], entry["vs_baseline_stripped"]["rouge1"]
            line += (f" | ROUGE-1 - {args.baseline}: raw {raw['diff']:+.4f} [{raw['ci_low']:+.4f}, "
                     f"{raw['ci_high']:+.4f}], stripped {clean['diff']:+.4f} [{clean['ci_low']:+.4f}, "
                     f"{clean['ci_high']:+.4f}]")
        print(line)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
