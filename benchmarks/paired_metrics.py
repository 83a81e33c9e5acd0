"""Two evaluate runs of the same test targets, compared per target: mean difference, 95% bootstrap CI, p-value.

    .venv/bin/python benchmarks/paired_metrics.py RUN_A/data/eval/predictions.jsonl RUN_B/data/eval/predictions.jsonl \
        --names bf16 fp32 --out benchmarks/results/precision_metrics.json

Used to say whether a change that should not alter results (bf16 against fp32) moved the metrics beyond
their noise: a difference whose interval contains 0 is within noise at this number of targets. Two runs that
scored different targets are refused, unless `--shared` pairs them on the targets both scored (`make run`'s
60 test targets against a comparison record's 210).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nextquill.evaluation.statistics import paired_difference  # noqa: E402

METRICS = ("rouge1", "rougeL", "meteor")


def load(path: Path) -> dict[str, dict]:
    return {row["example_id"]: row for row in map(json.loads, path.read_text().splitlines())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--names", nargs=2, default=("a", "b"))
    p.add_argument("--out", type=Path)
    p.add_argument("--shared", action="store_true", help="pair on the targets both runs scored")
    args = p.parse_args()
    a, b = load(args.a), load(args.b)
    if a.keys() != b.keys() and not args.shared:
        raise SystemExit(f"the runs scored different targets: {len(a.keys() ^ b.keys())} differ (--shared pairs "
                         "on those both scored)")
    ids = sorted(a.keys() & b.keys())
    if not ids:
        raise SystemExit("the runs share no target")
    result = {"n_targets": len(ids), "names": list(args.names), "difference": f"{args.names[0]} - {args.names[1]}",
              "identical_predictions": sum(a[i]["prediction"] == b[i]["prediction"] for i in ids),
              "short_outputs": {n: sum(len(r[i]["prediction"].split()) < 10 for i in ids)
                                for n, r in zip(args.names, (a, b), strict=True)}}
    for metric in METRICS:
        result[metric] = {"means": {n: sum(r[i][metric] for i in ids) / len(ids)
                                    for n, r in zip(args.names, (a, b), strict=True)},
                          **paired_difference([a[i][metric] for i in ids], [b[i][metric] for i in ids])}
        r = result[metric]
        print(f"{metric}: {args.names[0]} {r['means'][args.names[0]]:.4f}, {args.names[1]} "
              f"{r['means'][args.names[1]]:.4f}, diff {r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], "
              f"p = {r['p_value']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
