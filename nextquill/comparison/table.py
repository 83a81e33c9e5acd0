"""Comparison stage `table`: the recorded runs of `comparison/runs/` as `comparison/results.{md,json}`.

Per method: the seeds it ran, each metric's mean and sd across seeds, the paired difference to ContextSFT
over the same test targets (each target's score averaged over the seeds first; 95% percentile bootstrap CI
resampling targets and a sign-flip p-value, `vs_context_sft`), the difference across matched training seeds
(Student-t CI, `vs_context_sft_seeds`) and the verdict of both (`verdict`); per category; the DCE diagnostics.
A method or seed without a record is shown as missing, never dropped. Built from the records alone (small
files in git), so a fresh clone rebuilds it without any adapter.

    python -m nextquill.comparison.table
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from nextquill.comparison.methods import BASELINE, METHODS, METRICS, read_record, record_dir, run_values
from nextquill.config import Params, flatten
from nextquill.io import atomic_open, write_json
from nextquill.provenance import params_digest, source_commit

# Per-example scores the paired statistics resample; corpus BLEU has no per-target share, so sentence BLEU
# stands in for it there.
PAIRED = {"rouge1": "rouge1", "rougeL": "rougeL", "meteor": "meteor", "bleu": "sentence_bleu"}


def method_names(params: Params) -> list[str]:
    return [*params.compare.zero_shot, *params.compare.methods, *params.compare.readings, *params.compare.derived]


def collect(root: Path, params: Params) -> list[dict]:
    """Each method's recorded runs (seed -> record), in table order, with the seeds still missing."""
    out = []
    for name in method_names(params):
        seeds = list(params.compare.seeds_of(name)) if METHODS[name].seeded else [None]
        runs = {s: r for s in seeds if (r := read_record(record_dir(root, name, s))) is not None}
        out.append({"method": name, "runs": runs, "missing_seeds": [s for s in seeds if s not in runs]})
    return out


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _sd(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.stdev(kept) if len(kept) > 1 else None


def target_scores(runs: dict) -> dict[str, dict[str, float]]:
    """example_id -> each paired score averaged over the seeds; only targets every seed scored."""
    per_run = [{p["example_id"]: p for p in r["predictions"]} for r in runs.values()]
    shared = set.intersection(*(set(p) for p in per_run)) if per_run else set()
    return {i: {k: sum(p[i][k] for p in per_run) / len(per_run) for k in PAIRED.values()
                if all(k in p[i] for p in per_run)} for i in sorted(shared)}


def _lengths(predictions: list[dict]) -> dict[str, float]:
    words = [len(p["prediction"].split()) for p in predictions]
    return {"prediction_words": sum(words) / len(words),
            "reference_words": sum(len(p["reference"].split()) for p in predictions) / len(predictions),
            "short_predictions": sum(w < 10 for w in words)} if words else {}


def summarize(entry: dict) -> dict:
    """One method's row: means and sds over its seeds, per category, lengths, timings and provenance."""
    name, runs = entry["method"], entry["runs"]
    row = {"method": name, "label": METHODS[name].label, "kind": METHODS[name].kind,
           "seeds": [s for s in runs if s is not None], "missing_seeds": entry["missing_seeds"]}
    if not runs:
        return row | {"status": "missing", "n_targets": 0}
    records = list(runs.values())
    overall = [r["metrics"]["overall"] for r in records]
    row["status"] = "complete" if not entry["missing_seeds"] else "partial"
    row["metrics"] = {m: {"mean": _mean([o.get(m) for o in overall]), "sd": _sd([o.get(m) for o in overall]),
                          "per_seed": [o.get(m) for o in overall]} for m in METRICS}
    categories = sorted({c for r in records for c in r["metrics"]["by_category"]})
    row["by_category"] = {c: {m: _mean([r["metrics"]["by_category"].get(c, {}).get(m) for r in records])
                              for m in METRICS} for c in categories}
    lengths = [_lengths(r["predictions"]) for r in records]
    row["lengths"] = {k: _mean([x.get(k) for x in lengths]) for k in lengths[0]}
    diagnostics = [r["metrics"].get("diagnostics") or {} for r in records]
    keys = sorted({k for d in diagnostics for k, v in d.items() if isinstance(v, int | float)})
    row["diagnostics"] = {k: _mean([d.get(k) for d in diagnostics]) for k in keys}
    steps = sorted({k for r in records for k in r["info"]["seconds"]})
    row["seconds"] = {k: _mean([r["info"]["seconds"].get(k) for r in records]) for k in steps}
    row["train_loss"] = _mean([r["train"].get("train_loss") for r in records])
    row["train_steps"] = _mean([r["train"].get("steps") for r in records])
    row["commits"] = sorted({str(r["info"].get("commit")) for r in records})
    row["params_digests"] = sorted({r["info"].get("params_digest") for r in records})
    return row


def versus(scores: dict[str, dict[str, float]], base: dict[str, dict[str, float]], resamples: int) -> dict | None:
    """Per metric, the paired difference to the baseline over the targets both scored; None without overlap."""
    from nextquill.evaluation.statistics import paired_difference

    shared = sorted(scores.keys() & base.keys())
    if not shared:
        return None
    out = {}
    for metric, key in PAIRED.items():
        if all(key in scores[i] and key in base[i] for i in shared):
            out[metric] = paired_difference([scores[i][key] for i in shared], [base[i][key] for i in shared],
                                            resamples=resamples) | {"score": key}
    return out


def seed_versus(runs: dict, base_runs: dict, targets: list[str]) -> dict | None:
    """Per metric, the difference to the baseline across the training seeds both ran, over `targets` (those the
    targets' interval pairs); None when they share fewer than 2 seeds.

    Seed s of the method is paired with seed s of the baseline (same training sample and data order); each
    seed's difference is the mean over `targets` (`statistics.seed_difference`). A zero-shot method has no
    training seed: its one run is paired with every seed of the baseline. A metric that some paired run lacks
    for some target is left out, as `versus` leaves it out.
    """
    from nextquill.evaluation.statistics import seed_difference

    if set(runs) == {None}:
        runs = dict.fromkeys(base_runs, runs[None])
    seeds = sorted(s for s in runs.keys() & base_runs.keys() if s is not None)
    if len(seeds) < 2 or not targets:
        return None
    by_seed = [({p["example_id"]: p for p in runs[s]["predictions"]},
                {p["example_id"]: p for p in base_runs[s]["predictions"]}) for s in seeds]
    out = {}
    for metric, key in PAIRED.items():
        if all(key in ours[i] and key in theirs[i] for ours, theirs in by_seed for i in targets):
            diffs = [sum(ours[i][key] - theirs[i][key] for i in targets) / len(targets) for ours, theirs in by_seed]
            out[metric] = seed_difference(diffs) | {"score": key, "seeds": seeds, "per_seed": diffs,
                                                    "n_targets": len(targets)}
    return out


def _excludes_zero(result: dict | None) -> int:
    """+1 / -1 when the interval lies above / below 0, else 0."""
    if not result:
        return 0
    return 1 if result["ci_low"] > 0 else -1 if result["ci_high"] < 0 else 0


def verdict(targets: dict | None, seeds: dict | None) -> dict[str, str]:
    """Per metric: "above" or "below" the baseline when both intervals exclude 0 on that side, else
    "inconclusive" (not shown to differ, which is not shown to be equal).

    Without a seed interval for the metric (one seed, or seeds not shared with the baseline) the verdict is
    "targets only: above/below", or "inconclusive".
    """
    out = {}
    for metric in PAIRED:
        over_targets = _excludes_zero((targets or {}).get(metric))
        side = {1: "above", -1: "below"}.get(over_targets)
        over_seeds = (seeds or {}).get(metric)
        if over_seeds is None:
            out[metric] = f"targets only: {side}" if side else "inconclusive"
        else:
            out[metric] = side if side and _excludes_zero(over_seeds) == over_targets else "inconclusive"
    return out


def build_table(entries: list[dict], resamples: int) -> dict:
    """The JSON table: one row per method (`summarize`) with `vs_context_sft` (targets, seed-averaged),
    `vs_context_sft_seeds` (matched training seeds) and the `verdict` both intervals give."""
    scores = {e["method"]: target_scores(e["runs"]) for e in entries}
    base = scores.get(BASELINE) or None
    base_runs = next((e["runs"] for e in entries if e["method"] == BASELINE), {})
    rows = []
    for entry in entries:
        row = summarize(entry)
        if entry["runs"]:
            row["n_targets"] = len(scores[entry["method"]])
            row["vs_context_sft"] = versus(scores[entry["method"]], base, resamples) if base else None
            if base and entry["method"] != BASELINE:
                shared = sorted(scores[entry["method"]].keys() & base.keys())
                row["vs_context_sft_seeds"] = seed_versus(entry["runs"], base_runs, shared)
                row["verdict"] = verdict(row["vs_context_sft"], row["vs_context_sft_seeds"])
            for metric, values in row["metrics"].items():
                values["vs_context_sft"] = (row["vs_context_sft"] or {}).get(metric)
                values["vs_context_sft_seeds"] = (row.get("vs_context_sft_seeds") or {}).get(metric)
        rows.append(row)
    return {"baseline": BASELINE if base else None, "metrics": list(METRICS), "resamples": resamples,
            "methods": rows}


def _fmt(value: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


def _mean_sd(values: dict) -> str:
    sd = values.get("sd")
    return _fmt(values.get("mean")) + (f" ± {_fmt(sd)}" if sd is not None else "")


def _paired_cell(result: dict | None) -> str:
    if not result:
        return "–"
    mark = " *" if result["ci_low"] > 0 or result["ci_high"] < 0 else ""
    return (f"{result['diff']:+.4f} [{result['ci_low']:+.4f}, {result['ci_high']:+.4f}] "
            f"p={result['p_value']:.3f}{mark}")


def _missing(row: dict) -> str:
    seeds = ", ".join(str(s) for s in row["missing_seeds"] if s is not None)
    return "not run" + (f" (seeds {seeds})" if seeds else "")


def main_lines(rows: list[dict]) -> list[str]:
    lines = ["| method | seeds | " + " | ".join(METRICS) + " | targets | words | outputs < 10 words | train s | "
             "eval s |", "|---|---:|" + "---:|" * (len(METRICS) + 5)]
    for r in rows:
        if r["status"] == "missing":
            lines.append(f"| {r['label']} | {_missing(r)} |" + " – |" * (len(METRICS) + 5))
            continue
        seeds = str(len(r["seeds"])) if r["seeds"] else "–"
        if r["missing_seeds"]:  # e.g. "1 (43, 44 not run)"
            seeds += " (" + ", ".join(str(s) for s in r["missing_seeds"]) + " not run)"
        lengths, seconds = r["lengths"], r["seconds"]
        train = seconds.get("train", seconds.get("oppu"))
        lines.append(f"| {r['label']} | {seeds} | " + " | ".join(_mean_sd(r["metrics"][m]) for m in METRICS)
                     + f" | {r['n_targets']} | {lengths.get('prediction_words', 0):.0f} | "
                     f"{lengths.get('short_predictions', 0):.1f} | {_fmt(train) if train is not None else '–'} | "
                     f"{_fmt(seconds.get('evaluate')) if 'evaluate' in seconds else '–'} |")
    lines += ["", "Mean ± sd over the training seeds (– for one run); zero-shot methods decode once. "
              "Outputs < 10 words: mean count per seed."]
    return lines


def paired_lines(rows: list[dict], resamples: int) -> list[str]:
    """Each method minus ContextSFT over the same targets; * marks a 95% CI that excludes 0."""
    shown = ("rouge1", "rougeL", "meteor", "bleu")
    lines = ["| method − ContextSFT, same targets | " + " | ".join(f"{m} diff [95% CI] p" for m in shown)
             + " | targets |", "|---|" + "---:|" * (len(shown) + 1)]
    for r in rows:
        if r["status"] == "missing":
            continue
        versus_base = r.get("vs_context_sft") or {}
        lines.append(f"| {r['label']} | " + " | ".join(_paired_cell(versus_base.get(k)) for k in shown)
                     + f" | {next(iter(versus_base.values()))['n'] if versus_base else '–'} |")
    lines += ["", f"Paired over the test targets both methods scored, each target's score first averaged over the "
              f"method's seeds: mean difference, 95% percentile bootstrap CI ({resamples:,} resamples of "
              f"targets, seed 0) and a two-sided sign-flip p-value; * marks a CI that excludes 0. The BLEU "
              f"column pairs sentence BLEU (corpus BLEU has no per-target share)."]
    return lines


def seed_lines(rows: list[dict]) -> list[str]:
    """Each method minus ContextSFT across matched training seeds, and the verdict of both intervals."""
    shown = ("rouge1", "rougeL", "meteor", "bleu")
    lines = ["| method − ContextSFT, matched seeds | seeds paired | " + " | ".join(f"{m} diff [95% CI]" for m in shown)
             + " | verdict (both CIs) |", "|---|---:|" + "---:|" * len(shown) + "---|"]
    for r in rows:
        if r["status"] == "missing" or "verdict" not in r:
            continue
        seeds = r.get("vs_context_sft_seeds") or {}
        cells = []
        for k in shown:
            x = seeds.get(k)
            cells.append("–" if x is None else f"{x['diff']:+.4f} [{x['ci_low']:+.4f}, {x['ci_high']:+.4f}]"
                         + (" *" if _excludes_zero(x) else ""))
        shared = next(iter(seeds.values()))["seeds"] if seeds else []
        n = ", ".join(str(x) for x in shared) or "–"
        calls = [f"{m} {v}" for m, v in r["verdict"].items() if v != "inconclusive"]
        lines.append(f"| {r['label']} | {n} | " + " | ".join(cells)
                     + f" | {'; '.join(calls) or 'inconclusive'} |")
    lines += ["", "Across training seeds: seed s of the method against seed s of ContextSFT (same training sample "
              "and data order), each seed's difference averaged over the shared targets; mean and Student-t 95% "
              "CI with seeds − 1 degrees of freedom (– without 2 seeds shared with ContextSFT; a zero-shot run is "
              "paired with each of its seeds). The verdict calls a method above or below ContextSFT on a metric "
              "only when this CI and the targets' CI above both exclude 0 on that side, else inconclusive; "
              "without a seed CI only the targets' CI exists, and the verdict says so."]
    return lines


def markdown(table: dict) -> str:
    """The Markdown version of `build_table`: overall, paired, per category, and the DCE diagnostics."""
    rows = table["methods"]
    done = [r for r in rows if r["status"] != "missing"]
    lines = [*main_lines(rows), "", *paired_lines(rows, table["resamples"]), "", *seed_lines(rows)]
    categories = sorted({c for r in done for c in r["by_category"]})
    lines += ["", "| method | " + " | ".join(f"{c} R-1 | {c} R-L" for c in categories) + " |",
              "|---|" + "---:|" * (2 * len(categories))]
    for r in done:
        cells = [" | ".join(_fmt(r["by_category"].get(c, {}).get(k)) for k in ("rouge1", "rougeL"))
                 for c in categories]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    lines += ["", "| model whose DCE is scored | ROC-AUC | R-precision | precision@10% | precision at δ | "
              "recall at δ |", "|---|---:|---:|---:|---:|---:|"]
    for r in done:
        d = r["diagnostics"]
        same_model = METHODS[r["method"]].steered or r["method"] == "base_no_history"
        if d and not same_model:  # decoding variants score the same model as their source run
            lines.append(f"| {r['label']} | " + " | ".join(_fmt(d.get(k)) for k in (
                "roc_auc", "r_precision", "precision_at_10pct", "precision_at_delta", "recall_at_delta")) + " |")
    lines += ["", f"Built from commit {table.get('commit') or 'unknown'} (parameters digest "
              f"{table.get('params_digest')})."]
    return "\n".join(lines) + "\n"


def write_table(root: Path, params: Params) -> dict:
    table = build_table(collect(root, params), params.compare.resamples)
    compare = {k: v for k, v in flatten(params).items() if k.startswith("compare.")}
    table = {"commit": source_commit(root), "params_digest": params_digest(run_values(params) | compare),
             "seeds": list(params.compare.seeds), "reading_seeds": list(params.compare.reading_seeds), **table}
    write_json(root / "comparison" / "results.json", table)
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
