"""Stage `evaluate`: decode the held-out targets with the trained model and score them.

Writes `data/eval/predictions.jsonl` (one line per example: ids, prediction, reference and its
scores) and `reports/metrics.json` (DVC metrics: ROUGE-1, ROUGE-L, METEOR, BLEU overall and per
category, with the decoding settings and metric conventions that produced them).
"""

from __future__ import annotations

import random
import sys

from nextquill.config import Params
from nextquill.io import write_json, write_jsonl
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main

COLUMNS = ["example_id", "user_id", "category", "item_id", "target", "prompt_ids_with", "prompt_ids_without"]


def load_model_for_eval(params: Params, paths: Paths):
    from nextquill.modeling import load_model

    model, tokenizer = load_model(paths.base_model, params.model.dtype)
    if params.eval.model == "trained":
        if (paths.adapter / "adapter_config.json").is_file():
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, paths.adapter)
        else:  # full fine-tuning saved a whole model
            model, tokenizer = load_model(paths.adapter, params.model.dtype)
    return model, tokenizer


def prompt_view(params: Params) -> str:
    view = params.eval.view
    if view == "auto":
        view = "without_history" if params.eval.model == "trained" and params.train.objective == "sft" else \
            "with_history"
    return view


def run(params: Params, paths: Paths) -> dict:
    import pyarrow.parquet as pq

    from nextquill.evaluate import Decoding, aggregate, example_scores, generate

    cfg = params.eval
    rows = pq.read_table(paths.prepared / f"{cfg.split}.parquet", columns=COLUMNS).to_pylist()
    if cfg.max_examples is not None and cfg.max_examples < len(rows):
        rows = random.Random(params.base.seed).sample(rows, cfg.max_examples)
    view = prompt_view(params)
    model, tokenizer = load_model_for_eval(params, paths)
    decoding = Decoding(cfg.max_new_tokens, cfg.repetition_penalty, cfg.do_sample, cfg.temperature, cfg.top_p)
    key = "prompt_ids_with" if view == "with_history" else "prompt_ids_without"
    hyps = generate(model, tokenizer, [r[key] for r in rows], decoding, cfg.batch_size)
    refs = [r["target"] for r in rows]
    scores = example_scores(hyps, refs, cfg.rouge_stemmer)
    if cfg.bertscore:
        from nextquill.evaluate import bertscore_f1, default_encoder

        encoder = default_encoder() if cfg.bertscore_encoder == "embedded:minilm" else cfg.bertscore_encoder
        for s, f1 in zip(scores, bertscore_f1(hyps, refs, encoder), strict=True):
            s["bertscore_f1"] = f1
    write_jsonl(paths.eval_dir / "predictions.jsonl", (
        {"example_id": r["example_id"], "user_id": r["user_id"], "category": r["category"], "item_id": r["item_id"],
         "prediction": h, "reference": r["target"], **s} for r, h, s in zip(rows, hyps, scores, strict=True)))
    by_category = {}
    for category in sorted({r["category"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["category"] == category]
        by_category[category] = aggregate([scores[i] for i in idx], [hyps[i] for i in idx], [refs[i] for i in idx])
    metrics = {"overall": aggregate(scores, hyps, refs), "by_category": by_category, "split": cfg.split,
               "model": cfg.model, "objective": params.train.objective if cfg.model == "trained" else None,
               "view": view, "decoding": decoding.__dict__,
               "conventions": {"rouge": f"rouge-score F mean, stemmer={cfg.rouge_stemmer}",
                               "meteor": "nltk meteor_score, NLTKWordTokenizer, WordNet 3.0",
                               "bleu": "sacrebleu corpus_bleu, 0-100",
                               "bertscore": f"F1, last layer of {cfg.bertscore_encoder}, no idf, no rescaling"
                               if cfg.bertscore else None}}
    write_json(paths.reports / "metrics.json", metrics)
    return metrics["overall"]


def main(argv: list[str] | None = None) -> int:
    return stage_main("evaluate", run, argv)


if __name__ == "__main__":
    sys.exit(main())
