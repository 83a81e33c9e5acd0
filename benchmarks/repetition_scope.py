"""What the repetition penalty counts: one comparison run's adapter decoded at each `eval.repetition_scope`.

    .venv/bin/python benchmarks/repetition_scope.py context_sft --seed 42   # needs comparison/work/context_sft/seed42
    .venv/bin/python benchmarks/repetition_scope.py sft --seed 42 --variants generated:1.2 all:1.2 all:1.0

Each variant (`scope:penalty`) decodes the run's evaluated targets (the comparison's `eval` settings otherwise)
with the pipeline's own `generate`; the output has each variant's metrics, words and outputs under 10 words,
and every variant paired with the first over the same targets (95% bootstrap CI, sign-flip p). Written to
`benchmarks/results/repetition_scope_<method>_seed<s>.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nextquill.comparison.methods import method_params, method_paths  # noqa: E402
from nextquill.evaluation.statistics import paired_difference  # noqa: E402
from nextquill.io import write_json  # noqa: E402

METRICS = ("rouge1", "rougeL", "meteor", "sentence_bleu")


def decode_variant(params, model, tokenizer, rows, view: str, scope: str, penalty: float) -> tuple[list[str], float]:
    from nextquill.model.generation import Decoding, generate

    decoding = Decoding.from_config(params.eval, repetition_scope=scope, repetition_penalty=penalty)
    key = "prompt_ids_with" if view == "with_history" else "prompt_ids_without"
    start = time.perf_counter()
    hyps = generate(model, tokenizer, [r[key] for r in rows], decoding, params.eval.batch_size, desc=scope)
    return hyps, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("method")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--variants", nargs="+", default=["all:1.2", "generated:1.2", "all:1.0"])
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = p.parse_args()
    from nextquill.stages import evaluate

    params = method_params(args.method, args.params, args.seed)
    paths = method_paths(args.method, Path("."), args.seed)
    view, rows = evaluate.prompt_view(params), evaluate.load_rows(params, paths)
    model, tokenizer = evaluate.load_model_for_eval(params, paths)
    out: dict = {"method": args.method, "seed": args.seed, "targets": len(rows), "view": view, "variants": {}}
    scores: dict[str, list[dict]] = {}
    for variant in args.variants:
        scope, penalty = variant.split(":")
        hyps, seconds = decode_variant(params, model, tokenizer, rows, view, scope, float(penalty))
        scores[variant], overall, _ = evaluate.score(params, rows, hyps)
        out["variants"][variant] = {k: overall[k] for k in ("rouge1", "rougeL", "meteor", "bleu", "prediction_words",
                                                            "short_outputs") if k in overall}
        out["variants"][variant] |= {"seconds": round(seconds, 1), "first_outputs": hyps[:2]}
    first = args.variants[0]
    out["vs_" + first] = {v: {m: paired_difference([s[m] for s in scores[v]], [s[m] for s in scores[first]])
                              for m in METRICS} for v in args.variants[1:]}
    path = Path("benchmarks/results") / f"repetition_scope_{args.method}_seed{args.seed}.json"
    write_json(path, out)
    print(json.dumps(out["variants"], indent=1))


if __name__ == "__main__":
    main()
