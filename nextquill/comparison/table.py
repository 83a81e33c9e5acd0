"""Comparison stage `table`: the finished runs of `comparison/runs/` as `comparison/results.{md,json}`.

Methods × metrics × categories, with the relative change over ContextSFT, the paired difference to ContextSFT
over the same test targets (95% bootstrap CI over targets and a sign-flip p-value, `vs_context_sft`), and the
DCE diagnostics of each model.

    python -m nextquill.comparison.table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nextquill.comparison.methods import BASELINE, METHODS, METRICS, RUNS
from nextquill.config import Params
from nextquill.io import write_json


def collect(root: Path, names: list[str]) -> list[dict]:
    """Each finished run's metrics and timings, in the order of `names`; missing runs are reported, not skipped."""
    rows = []
    for name in names:
        folder = root / RUNS / name
        metrics_file, info_file = folder / "reports" / "metrics.json", folder / "method.json"
        if not metrics_file.is_file() or not info_file.is_file():
            raise FileNotFoundError(f"{folder}: no finished run for method {name!r} (missing metrics.json or "
                                    f"method.json); run `dvc repro comparison/dvc.yaml`")
        metrics, info = json.loads(metrics_file.read_text()), json.loads(info_file.read_text())
        train_file = folder / "reports" / "train_metrics.json"
        train = json.loads(train_file.read_text()) if train_file.is_file() else {}
        predictions = folder / "data" / "eval" / "predictions.jsonl"
        lengths = output_lengths(predictions)
        rows.append({"method": name, "label": info["label"], "seed": info["seed"], "seconds": info["seconds"],
                     "overall": metrics["overall"], "by_category": metrics["by_category"],
                     "diagnostics": metrics.get("diagnostics", {}), "train_loss": train.get("train_loss"),
                     "steps": train.get("steps"), "lengths": lengths, "scores": example_scores(predictions)})
    return rows


def output_lengths(predictions: Path) -> dict[str, float]:
    """Mean words per prediction and per reference, and how many predictions stop under 10 words."""
    rows = [json.loads(line) for line in predictions.read_text().splitlines()] if predictions.is_file() else []
    if not rows:
        return {}
    words = [len(r["prediction"].split()) for r in rows]
    return {"prediction_words": sum(words) / len(rows),
            "reference_words": sum(len(r["reference"].split()) for r in rows) / len(rows),
            "short_predictions": sum(w < 10 for w in words)}


PAIRED = ("rouge1", "rougeL", "meteor", "sentence_bleu")  # per-example scores the paired statistics resample


def example_scores(predictions: Path) -> dict[str, dict[str, float]]:
    """example_id -> its per-example scores (those of PAIRED that the run stored)."""
    rows = [json.loads(line) for line in predictions.read_text().splitlines()] if predictions.is_file() else []
    return {r["example_id"]: {m: r[m] for m in PAIRED if m in r} for r in rows}


def versus(scores: dict[str, dict[str, float]], base: dict[str, dict[str, float]]) -> dict[str, dict] | None:
    """Per metric, the paired difference to the baseline over the targets both scored; None without overlap."""
    from nextquill.evaluation.statistics import paired_difference

    shared = sorted(scores.keys() & base.keys())
    if not shared:
        return None
    out = {}
    for metric in PAIRED:
        if all(metric in scores[i] and metric in base[i] for i in shared):
            out[metric] = paired_difference([scores[i][metric] for i in shared], [base[i][metric] for i in shared])
    return out


def relative(value: float | None, base: float | None) -> float | None:
    """Relative change in percent; None when either side is missing or the baseline is 0."""
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / base


def build_table(rows: list[dict]) -> dict:
    """The JSON table: per method, overall and per-category metrics with the change over ContextSFT."""
    base = next((r for r in rows if r["method"] == BASELINE), None)
    table = []
    for r in rows:
        entry = {k: r.get(k) for k in ("method", "label", "seed", "seconds", "train_loss", "steps", "diagnostics",
                                       "lengths")}
        entry["n_targets"] = len(r.get("scores") or {})
        entry["vs_context_sft"] = versus(r.get("scores") or {}, base.get("scores") or {}) if base is not None else None
        entry["overall"] = {m: r["overall"].get(m) for m in METRICS} | {"n": r["overall"].get("n")}
        entry["by_category"] = {c: {m: v.get(m) for m in METRICS} for c, v in r["by_category"].items()}
        if base is not None:
            entry["vs_context_sft_pct"] = {m: relative(r["overall"].get(m), base["overall"].get(m)) for m in METRICS}
            entry["by_category_vs_context_sft_pct"] = {
                c: {m: relative(v.get(m), base["by_category"].get(c, {}).get(m)) for m in METRICS}
                for c, v in r["by_category"].items()}
        table.append(entry)
    return {"baseline": BASELINE if base is not None else None, "metrics": list(METRICS), "methods": table}


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{value:+.1f}%" if pct else f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


def _paired_cell(result: dict | None) -> str:
    if not result:
        return "–"
    mark = " *" if result["ci_low"] > 0 or result["ci_high"] < 0 else ""
    return (f"{result['diff']:+.4f} [{result['ci_low']:+.4f}, {result['ci_high']:+.4f}] "
            f"p={result['p_value']:.3f}{mark}")


def paired_lines(methods: list[dict]) -> list[str]:
    """Each method minus ContextSFT over the same targets; * marks a 95% CI that excludes 0."""
    shown = ("rouge1", "rougeL", "meteor")
    lines = ["| method − ContextSFT, same targets | " + " | ".join(f"{m} diff [95% CI] p" for m in shown)
             + " | targets |", "|---|" + "---:|" * (len(shown) + 1)]
    for m in methods:
        versus_base = m.get("vs_context_sft") or {}
        lines.append(f"| {m['label']} | " + " | ".join(_paired_cell(versus_base.get(k)) for k in shown)
                     + f" | {m.get('n_targets', '–')} |")
    lines.append("")
    lines.append("Paired over the test targets both methods scored: mean difference, 95% percentile bootstrap CI "
                 "(2,000 resamples of targets, seed 0) and a two-sided sign-flip p-value; * marks a CI that "
                 "excludes 0. One training seed per method.")
    return lines


def markdown(table: dict) -> str:
    """The Markdown version of `build_table`: overall, per category, and the DCE diagnostics."""
    methods = table["methods"]
    lines = ["| method | " + " | ".join(METRICS) + " | ROUGE-1 vs ContextSFT | words | outputs < 10 words "
             "| train s | eval s |", "|---|" + "---:|" * (len(METRICS) + 5)]
    for m in methods:
        cells = [_fmt(m["overall"][k]) for k in METRICS]
        delta = _fmt((m.get("vs_context_sft_pct") or {}).get("rouge1"), pct=True)
        lengths = m.get("lengths") or {}
        words = f"{lengths['prediction_words']:.0f}" if lengths else "–"
        lines.append(f"| {m['label']} | " + " | ".join(cells) + f" | {delta} | {words} | "
                     f"{lengths.get('short_predictions', '–')} | "
                     f"{m['seconds'].get('train', 0):.0f} | {m['seconds'].get('evaluate', 0):.0f} |")
    lines += ["", *paired_lines(methods)]
    categories = sorted({c for m in methods for c in m["by_category"]})
    lines += ["", "| method | " + " | ".join(f"{c} R-1 | {c} R-L" for c in categories) + " |",
              "|---|" + "---:|" * (2 * len(categories))]
    for m in methods:
        cells = [" | ".join(_fmt(m["by_category"].get(c, {}).get(k)) for k in ("rouge1", "rougeL"))
                 for c in categories]
        lines.append(f"| {m['label']} | " + " | ".join(cells) + " |")
    lines += ["", "| model whose DCE is scored | ROC-AUC | R-precision | precision@10% | precision at δ | "
              "recall at δ |", "|---|---:|---:|---:|---:|---:|"]
    for m in methods:
        d = m["diagnostics"]
        same_model = METHODS[m["method"]].steered or m["method"] == "base_no_history"
        if d and not same_model:  # decoding variants score the same model as their source run
            lines.append(f"| {m['label']} | " + " | ".join(_fmt(d.get(k)) for k in (
                "roc_auc", "r_precision", "precision_at_10pct", "precision_at_delta", "recall_at_delta")) + " |")
    return "\n".join(lines) + "\n"


def write_table(root: Path, params: Params) -> dict:
    names = [*params.compare.zero_shot, *params.compare.methods, *params.compare.derived]
    table = build_table(collect(root, names))
    write_json(root / "comparison" / "results.json", table)
    from nextquill.io import atomic_open

    with atomic_open(root / "comparison" / "results.md") as handle:
        handle.write(markdown(table))
    return table


def main(argv: list[str] | None = None) -> int:
    import argparse

    from nextquill.config import ConfigError, load_params

    parser = argparse.ArgumentParser(prog="python -m nextquill.comparison.table")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".")
    args = parser.parse_args(argv)
    try:
        write_table(Path(args.root), load_params(args.params))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((Path(args.root) / "comparison" / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
