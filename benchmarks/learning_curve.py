"""Learning curve: validation ROUGE-1, ROUGE-L and METEOR of SFT, ContextSFT and NextQuill at several budgets.

    .venv/bin/python benchmarks/learning_curve.py --budgets 6 12 24 48    # writes reports/learning_curve.json
                                                                         # and reports/plots/learning_curve.png

Each method trains once, for the largest budget (optimizer steps), with the pipeline's own code and
`params.yaml` (plus `--max-examples` training examples, null = all); a callback saves the adapter when the run
reaches each budget, as the official protocol saves every epoch, and every saved adapter decodes the same
`--val-examples` validation targets. Checkpoints are scored on the val split, never on test. Per budget, the
file holds each method's metrics and the paired differences (ContextSFT and NextQuill minus SFT, NextQuill minus
ContextSFT) over the same targets (95% bootstrap CI, sign-flip p), so the budget at which the methods separate
is read, not guessed.
Work folders go to `.work/learning_curve/` (git-ignored); the budget-by-budget results are written as they
finish, so an interrupted run keeps what it measured (`--resume` skips finished points).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nextquill.comparison.methods import method_params  # noqa: E402
from nextquill.evaluation.statistics import paired_difference  # noqa: E402
from nextquill.io import write_json  # noqa: E402
from nextquill.paths import Paths  # noqa: E402

METRICS = ("rouge1", "rougeL", "meteor")


def save_at(budgets: list[int], folder: Path):
    """A Trainer callback that writes the adapter to `folder/step<N>/models/adapter` at each budget N."""
    from transformers import TrainerCallback

    class _SaveAt(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in budgets:
                model.save_pretrained(folder / f"step{state.global_step}" / "models" / "adapter")

    return _SaveAt()


def point_metrics(out: Path) -> tuple[dict, dict[str, dict]]:
    metrics = json.loads((out / "reports" / "metrics.json").read_text())
    rows = [json.loads(x) for x in (out / "data" / "eval" / "predictions.jsonl").read_text().splitlines()]
    words = [len(r["prediction"].split()) for r in rows]
    overall = {k: metrics["overall"][k] for k in (*METRICS, "bleu")} | {
        "prediction_words": sum(words) / len(words), "short_outputs": sum(w < 10 for w in words)}
    return overall, {r["example_id"]: r for r in rows}


def score_point(params, paths: Paths) -> None:
    """The evaluate stage's decoding and scoring of one saved adapter, without its token-effect pass (the curve
    reads the metrics only, and that pass would add half the decoding time again)."""
    from nextquill.stages import evaluate

    view, rows = evaluate.prompt_view(params), evaluate.load_rows(params, paths)
    model, tokenizer = evaluate.load_model_for_eval(params, paths)
    hyps = evaluate.decode(params, model, tokenizer, rows, view)
    evaluate.write_results(params, paths, rows, hyps, view, diagnostics={})


def run_method(method: str, args, root: Path, results: dict) -> None:
    from nextquill.model.training import train_adapter

    overrides = {"train.max_steps": max(args.budgets), "train.max_examples": args.max_examples,
                 "train.save_steps": 10 ** 6, "eval.split": "val", "eval.max_examples": args.val_examples}
    params = method_params(method, args.params, extra=overrides | args.overrides)
    work = curve_dir(root, args.tag) / method
    done = results["points"].setdefault(method, {})
    if not (args.resume and all(str(b) in done for b in args.budgets)):
        start = time.perf_counter()
        train_adapter(params, Paths(root, out=work), work / "models" / "adapter", name=f"train {method}",
                      callbacks=(save_at(args.budgets, work),))
        results["train_seconds"][method] = round(time.perf_counter() - start, 1)
    for budget in args.budgets:
        if args.resume and str(budget) in done:
            continue
        start = time.perf_counter()
        out = work / f"step{budget}"
        score_point(params, Paths(root, out=out))
        overall, _ = point_metrics(out)
        done[str(budget)] = overall | {"eval_seconds": round(time.perf_counter() - start, 1)}
        write_json(args.out, results)


def curve_dir(root: Path, tag: str) -> Path:
    """Work folders of one curve; a `--tag` keeps a variant's (`--set`) apart from the default's."""
    return root / ".work" / "learning_curve" / tag if tag else root / ".work" / "learning_curve"


def paired(root: Path, budgets: list[int], methods: list[str], baseline: str = "sft", tag: str = "") -> dict:
    """Per budget and metric: each method minus `baseline` over the same val targets."""
    out: dict[str, dict] = {}
    for budget in budgets:
        base = point_metrics(curve_dir(root, tag) / baseline / f"step{budget}")[1]
        for method in methods:
            if method == baseline:
                continue
            mine = point_metrics(curve_dir(root, tag) / method / f"step{budget}")[1]
            ids = sorted(mine.keys() & base.keys())
            out.setdefault(str(budget), {})[f"{method} - {baseline}"] = {
                m: paired_difference([mine[i][m] for i in ids], [base[i][m] for i in ids]) for m in METRICS}
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6))
    for ax, metric in zip(axes, METRICS, strict=True):
        for method, points in results["points"].items():
            steps = sorted(int(b) for b in points)
            ax.plot(steps, [points[str(b)][metric] for b in steps], marker="o", label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"optimizer steps ({results['examples_per_step']} examples each)")
        ax.set_title(f"val {metric}")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Learning curve, {results['val_examples']} val targets, {results['model']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["sft", "context_sft", "nextquill"])
    p.add_argument("--budgets", nargs="+", type=int, default=[6, 12, 24, 48])
    p.add_argument("--max-examples", type=lambda v: None if v == "null" else int(v), default=None)
    p.add_argument("--val-examples", type=int, default=30)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--root", type=Path, default=Path("."))
    p.add_argument("--out", type=Path, default=Path("reports/learning_curve.json"))
    p.add_argument("--plot", type=Path, default=Path("reports/plots/learning_curve.png"))
    p.add_argument("--resume", action="store_true", help="keep the points already in --out")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a params override for every method (repeatable), e.g. effects.end_token=content")
    p.add_argument("--tag", default="", help="work subfolder of this variant (use with --set)")
    args = p.parse_args()
    args.overrides = dict(item.split("=", 1) for item in args.overrides)
    from nextquill.config import load_params

    params = load_params(args.params)
    results = json.loads(args.out.read_text()) if args.resume and args.out.is_file() else {}
    results = {"model": params.model.name_or_path, "budgets": args.budgets, "val_examples": args.val_examples,
               "overrides": args.overrides,
               "max_examples": args.max_examples,
               "examples_per_step": params.train.batch_size * params.train.grad_accum,
               "points": results.get("points", {}), "train_seconds": results.get("train_seconds", {})}
    for method in args.methods:
        run_method(method, args, args.root, results)
    for baseline in ("sft", "context_sft"):  # each method minus SFT, and NextQuill minus ContextSFT
        rest = [m for m in args.methods if m != "sft"] if baseline == "context_sft" else args.methods
        results[f"vs_{baseline}"] = (paired(args.root, args.budgets, rest, baseline, args.tag)
                                      if baseline in rest else {})
    write_json(args.out, results)
    plot(results, args.plot)
    print(json.dumps({m: {b: round(v["rougeL"], 4) for b, v in pts.items()} for m, pts in results["points"].items()}))


if __name__ == "__main__":
    main()
