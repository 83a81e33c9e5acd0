"""Effect estimation (`nextquill.model.estimate.estimate`): batched and length-sorted, against one row at a time and
against the ceiling, a plain no-grad forward of the same batches.

`batched`: `estimate(..., batch_size=--batch)` over all rows. `one_at_a_time`: the same function with
batch_size=1. `forward_only`: the same length-sorted batches through `CausalPairCollator` and two no-grad
forwards of the answer positions (`answer_logits`, as `estimate` uses), and no effect maths. Rows are synthetic
token ids of realistic, varied lengths from a seeded RNG (or `--data`). Throughput counts the real tokens of both
views.

    .venv/bin/python benchmarks/effects.py --model tiny --rows 8 --prompt-range 32 64 --target-range 8 16 --repeats 2
    .venv/bin/python benchmarks/effects.py --model embedded            # SmolLM2-135M, 32 rows of 300-1024 + 60-256
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from nextquill.config import load_params  # noqa: E402
from nextquill.model.collator import CausalPairCollator  # noqa: E402
from nextquill.model.estimate import estimate, length_sorted_batches  # noqa: E402
from nextquill.model.views import WeightSettings, answer_logits  # noqa: E402


def forward_only(model, rows: list[dict], batch_size: int, pad_id: int, device: str) -> None:
    collate = CausalPairCollator(pad_id, ("h", "0"))
    for chunk in length_sorted_batches(rows, batch_size):
        batch = {k: v.to(device) for k, v in collate([rows[i] for i in chunk]).items()}
        keep = batch["labels"] != -100
        with torch.no_grad():
            for view in ("h", "0"):
                answer_logits(model, batch, view, keep)


def main(argv: list[str] | None = None) -> int:
    p = C.parser("effects", __doc__)
    p.add_argument("--rows", type=int, default=32, help="synthetic rows")
    p.add_argument("--batch", type=int, default=8, help="batch size of the batched run (effects.batch_size)")
    p.add_argument("--prompt-range", type=int, nargs=2, default=(300, 1024), metavar=("MIN", "MAX"),
                   help="with-history prompt lengths; the no-history prompt is about 1/4")
    p.add_argument("--target-range", type=int, nargs=2, default=(60, 256), metavar=("MIN", "MAX"))
    p.add_argument("--profile", action="store_true", help="also profile each variant over the first (longest) batch "
                                                          "(torch.profiler)")
    args = p.parse_args(argv)
    model, _, pad, vocab = C.load(args.model, args.device, args.seed)
    model.eval()
    rows = (C.prepared_rows(args.data, args.rows, args.seed) if args.data else
            C.synthetic_rows(args.rows, tuple(args.prompt_range), tuple(args.target_range), vocab, args.seed))
    settings = WeightSettings.from_effects(load_params(C.ROOT / "params.yaml").effects)

    def run_estimate(batch_size: int, subset: list[dict] = rows):
        with C.autocast(args.device):
            return list(estimate(model, subset, batch_size, settings, pad))

    def run_forward(subset: list[dict] = rows):
        with C.autocast(args.device):
            forward_only(model, subset, args.batch, pad, args.device)

    one, many = run_estimate(1), run_estimate(args.batch)
    drift = max(abs(a - b) for (_, d1, _), (_, d2, _) in zip(sorted(one), sorted(many), strict=True)
                for a, b in zip(d1, d2, strict=True))
    print(f"largest DCE difference, batched vs one at a time: {drift:.2e}", file=sys.stderr)
    variants = {"batched": lambda: run_estimate(args.batch), "one_at_a_time": lambda: run_estimate(1),
                "forward_only": run_forward}
    times = C.interleaved(variants, args.repeats, args.device)

    tokens = sum(len(r["prompt_ids_with"]) + len(r["prompt_ids_without"]) + 2 * len(r["target_ids"]) for r in rows)
    positions = padded_positions(rows, args.batch)
    speedup = C.ratio(times["one_at_a_time"], times["batched"])
    of_ceiling = C.ratio(times["forward_only"], times["batched"])
    print(f"\n{args.data or 'synthetic'}: {args.rows} rows, {tokens} real tokens over both views ({positions} "
          f"positions with the batches' padding, {positions / tokens - 1:+.1%}), batch {args.batch}; "
          f"{args.model} on {args.device}, {args.repeats} rounds\n")
    print(C.table(["variant", "s/run", "tok/s"], [
        [name, C.fmt(C.stats(t), ".3f"), C.fmt(C.rate(tokens, t), ".0f")] for name, t in times.items()]))
    print()
    print(C.table(["comparison", "measured", "target"], [
        ["batched vs one at a time, throughput", C.fmt(speedup) + "×", "≥ 4×"],
        ["batched / forward-only ceiling, throughput", C.fmt(of_ceiling) + "×", "≥ 0.8×"]]))
    result = {
        "rows": args.rows, "tokens": tokens, "padded_positions_batched": positions,
        "max_dce_difference_batched_vs_single": drift, "seconds": {k: C.stats(v) for k, v in times.items()},
        "tokens_per_s": {k: C.rate(tokens, v) for k, v in times.items()},
        "speedup_vs_one_at_a_time": speedup, "fraction_of_ceiling": of_ceiling,
        "targets": {"speedup": 4.0, "fraction_of_ceiling": 0.8}}
    C.write_result(args, result)
    if args.profile:  # the first (longest) batch only: a whole run's events take too much memory
        first = [rows[i] for i in next(length_sorted_batches(rows, args.batch))]
        result["profile"], text = C.profile_table({
            "batched": lambda: run_estimate(args.batch, first), "one_at_a_time": lambda: run_estimate(1, first),
            "forward_only": lambda: run_forward(first)}, args.device)
        print(f"\none profiled run each over the first batch, {len(first)} rows (self time per kind of op)\n\n{text}")
        C.write_result(args, result)
    return 0


def padded_positions(rows: list[dict], batch_size: int) -> int:
    """Token positions the batched run computes over both views: each view padded to its batch's longest row."""
    total = 0
    for chunk in length_sorted_batches(rows, batch_size):
        for key in ("prompt_ids_with", "prompt_ids_without"):
            total += len(chunk) * max(len(rows[i][key]) + len(rows[i]["target_ids"]) for i in chunk)
    return total


if __name__ == "__main__":
    sys.exit(main())
