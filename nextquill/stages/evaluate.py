"""Stage `evaluate`: decode the held-out targets with the evaluated model, score them, and explain them.

Writes `data/eval/predictions.jsonl` (one line per example: ids, prediction, reference and its scores),
`data/eval/token_effects.jsonl` (the evaluated model's DCE and weight for every gold target token),
`reports/metrics.json` (DVC metrics: ROUGE-1, ROUGE-L, METEOR, BLEU overall and per category; where the
data carries ground-truth preference labels, how well this model's DCE finds them), the token-effect
report `reports/token_effects.html`.

The evaluated model is the trained one (base + adapter) or, as a baseline, the base model; decoding is
plain or Context Steering (`eval.steering` > 0), with the same protocol either way.
"""

from __future__ import annotations

import random
import sys
from dataclasses import asdict

from nextquill.config import Params
from nextquill.io import atomic_open, write_json, write_jsonl
from nextquill.model.generation import Decoding
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main

COLUMNS = ["example_id", "user_id", "category", "item_id", "target", "prompt_ids_with", "prompt_ids_without",
           "target_ids"]


def load_model_for_eval(params: Params, paths: Paths):
    from nextquill.model.loading import inference_device, load_model

    model, tokenizer = load_model(paths.base_model, params.model.dtype)
    if params.eval.model == "trained":
        if (paths.adapter / "adapter_config.json").is_file():
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, paths.adapter)
        else:  # full fine-tuning saved a whole model
            model, tokenizer = load_model(paths.adapter, params.model.dtype)
    return model.to(inference_device()), tokenizer


def prompt_view(params: Params) -> str:
    view = params.eval.view
    if view == "auto":
        view = "without_history" if params.eval.model == "trained" and params.train.objective == "sft" else \
            "with_history"
    if params.eval.steering > 0 and view != "with_history":
        raise ValueError(f"eval.steering = {params.eval.steering} needs the with-history view, but eval.view "
                         f"resolves to {view!r}; set eval.view: with_history or eval.steering: 0")
    return view


def load_rows(params: Params, paths: Paths) -> list[dict]:
    """The evaluated split (a seeded sample when eval.max_examples is set), with truth labels if present."""
    import pyarrow.parquet as pq

    cfg = params.eval
    path = paths.prepared / f"{cfg.split}.parquet"
    names = pq.read_schema(path).names
    rows = pq.read_table(path, columns=COLUMNS + [c for c in ("pref_labels",) if c in names]).to_pylist()
    if cfg.max_examples is not None and cfg.max_examples < len(rows):
        rows = random.Random(params.base.seed).sample(rows, cfg.max_examples)
    return rows


def decode(params: Params, model, tokenizer, rows: list[dict], view: str) -> list[str]:
    from nextquill.model.generation import generate

    cfg = params.eval
    decoding = Decoding.from_config(cfg)
    if cfg.steering > 0:
        from nextquill.model.steering import steered_generate

        return steered_generate(model, tokenizer, [r["prompt_ids_with"] for r in rows],
                                [r["prompt_ids_without"] for r in rows], cfg.steering, decoding, cfg.batch_size)
    key = "prompt_ids_with" if view == "with_history" else "prompt_ids_without"
    return generate(model, tokenizer, [r[key] for r in rows], decoding, cfg.batch_size)


def score(params: Params, rows: list[dict], hyps: list[str]) -> tuple[list[dict], dict, dict]:
    """Per-example scores, overall aggregate, and aggregates per category."""
    from nextquill.evaluation.metrics import aggregate, example_scores

    cfg = params.eval
    refs = [r["target"] for r in rows]
    scores = example_scores(hyps, refs, cfg.rouge_stemmer)
    if cfg.bertscore:
        from nextquill.evaluation.metrics import bertscore_f1, default_encoder

        encoder = default_encoder() if cfg.bertscore_encoder == "embedded:minilm" else cfg.bertscore_encoder
        for s, f1 in zip(scores, bertscore_f1(hyps, refs, encoder), strict=True):
            s["bertscore_f1"] = f1
    by_category = {}
    for category in sorted({r["category"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["category"] == category]
        by_category[category] = aggregate([scores[i] for i in idx], [hyps[i] for i in idx], [refs[i] for i in idx])
    return scores, aggregate(scores, hyps, refs), by_category


def explain(params: Params, paths: Paths, model, tokenizer, rows: list[dict]) -> dict:
    """The evaluated model's DCE on every gold target token: diagnostics, token file, HTML report."""
    from nextquill.evaluation.diagnostics import score_estimator
    from nextquill.evaluation.report import token_effect_html
    from nextquill.model.estimate import estimate
    from nextquill.model.views import WeightSettings

    fx = params.effects
    settings = WeightSettings.from_effects(params.effects)
    effects: dict[int, tuple[list, list]] = {}
    batches = estimate(model, rows, params.eval.batch_size, settings, tokenizer.pad_token_id, desc="token effects")
    for i, d, w in batches:
        effects[i] = (d, w)
    dce_rows = [effects[i][0] for i in range(len(rows))]
    labels = [r.get("pref_labels") for r in rows]
    diagnostics = score_estimator(dce_rows, labels, fx.delta)
    write_jsonl(paths.eval_dir / "token_effects.jsonl", (
        {"example_id": r["example_id"], "target_ids": r["target_ids"], "dce": effects[i][0],
         "weights": effects[i][1], "pref_labels": r.get("pref_labels")} for i, r in enumerate(rows)))
    shown = sorted(range(len(rows)), key=lambda i: rows[i]["example_id"])[:params.eval.report_examples]
    examples = [{"example_id": rows[i]["example_id"], "category": rows[i]["category"],
                 "tokens": [tokenizer.decode([t]) for t in rows[i]["target_ids"]], "dce": effects[i][0],
                 "weights": effects[i][1], "pref_label": rows[i].get("pref_labels"), "delta": fx.delta}
                for i in shown]
    who = "base model" if params.eval.model == "base" else f"trained model ({params.train.objective})"
    summary = {"model": who, "split": params.eval.split, "examples": len(rows), **diagnostics}
    with atomic_open(paths.reports / "token_effects.html") as handle:
        handle.write(token_effect_html(examples, f"NextQuill token effects: {who}", summary))
    return diagnostics


def run(params: Params, paths: Paths) -> dict:
    view = prompt_view(params)
    rows = load_rows(params, paths)
    model, tokenizer = load_model_for_eval(params, paths)
    hyps = decode(params, model, tokenizer, rows, view)
    diagnostics = explain(params, paths, model, tokenizer, rows)
    return write_results(params, paths, rows, hyps, view, diagnostics)["overall"]


def write_results(params: Params, paths: Paths, rows: list[dict], hyps: list[str], view: str,
                  diagnostics: dict, model_note: str | None = None) -> dict:
    """Score `hyps` against `rows`: `data/eval/predictions.jsonl` (per-example scores) and `reports/metrics.json`."""
    cfg = params.eval
    scores, overall, by_category = score(params, rows, hyps)
    write_jsonl(paths.eval_dir / "predictions.jsonl", (
        {"example_id": r["example_id"], "user_id": r["user_id"], "category": r["category"], "item_id": r["item_id"],
         "prediction": h, "reference": r["target"], **s} for r, h, s in zip(rows, hyps, scores, strict=True)))
    metrics = {"overall": overall, "by_category": by_category, "split": cfg.split, "model": model_note or cfg.model,
               "objective": params.train.objective if cfg.model == "trained" else None, "view": view,
               "steering": cfg.steering, "decoding": asdict(Decoding.from_config(cfg)), "diagnostics": diagnostics,
               "conventions": {"rouge": f"rouge-score F mean, stemmer={cfg.rouge_stemmer}",
                               "meteor": "nltk meteor_score, NLTKWordTokenizer, WordNet 3.0",
                               "bleu": "sacrebleu corpus_bleu, 0-100",
                               "bertscore": f"F1, last layer of {cfg.bertscore_encoder}, no idf, no rescaling"
                               if cfg.bertscore else None,
                               "diagnostics": "evaluated model's DCE on gold target tokens vs truth labels"}}
    write_json(paths.reports / "metrics.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_main("evaluate", run, argv)


if __name__ == "__main__":
    sys.exit(main())
