"""Generation (`nextquill.evaluation.metrics.generate`): batched, length-sorted prompts against one prompt at a time.

Greedy with repetition penalty 1.2 (the evaluate stage's decoding), on synthetic with-history prompts of
realistic, varied lengths from a seeded RNG. Throughput counts generated tokens (up to and including the first
eos). Both runs must give the same texts; the table says how many do.

    .venv/bin/python benchmarks/generation.py --model tiny --prompts 8 --prompt-range 32 64 --max-new-tokens 8
    .venv/bin/python benchmarks/generation.py --model embedded        # SmolLM2-135M, 16 prompts of 300-1024 tokens
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from nextquill.config import load_params  # noqa: E402
from nextquill.model.generation import Decoding, generate  # noqa: E402


@contextlib.contextmanager
def counting(model, eos: int, device: str, counts: list[int]):
    """Wrap `model.generate` to count the tokens it generates, up to and including the first eos."""
    inner = model.generate

    def wrapped(input_ids, attention_mask, **kwargs):
        width = input_ids.shape[1]
        out = inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        for row in out[:, width:].tolist():
            counts.append(row.index(eos) + 1 if eos in row else len(row))
        return out

    model.generate = wrapped
    try:
        with C.autocast(device):
            yield
    finally:
        del model.generate  # back to the class's method


def main(argv: list[str] | None = None) -> int:
    p = C.parser("generation", __doc__)
    p.add_argument("--prompts", type=int, default=16, help="synthetic prompts")
    p.add_argument("--batch", type=int, default=8, help="batch size of the batched run (eval.batch_size)")
    p.add_argument("--prompt-range", type=int, nargs=2, default=(300, 1024), metavar=("MIN", "MAX"))
    p.add_argument("--max-new-tokens", type=int, default=128, help="eval.max_new_tokens of params.yaml")
    p.add_argument("--profile", action="store_true", help="also profile one run of each variant (torch.profiler)")
    p.add_argument("--prefill", action="store_true", help="also time the prefill alone (one new token) both ways, "
                                                          "to split each run into prefill and decoding")
    args = p.parse_args(argv)
    model, tokenizer, _, vocab = C.load(args.model, args.device, args.seed)
    rows = (C.prepared_rows(args.data, args.prompts, args.seed) if args.data else
            C.synthetic_rows(args.prompts, tuple(args.prompt_range), (1, 1), vocab, args.seed))
    prompts = [r["prompt_ids_with"] for r in rows]
    decoding = Decoding.from_config(load_params(C.ROOT / "params.yaml").eval, max_new_tokens=args.max_new_tokens)
    eos = tokenizer.eos_token_id

    def run(batch_size: int, decoding: Decoding = decoding):
        counts: list[int] = []
        with counting(model, eos, args.device, counts):
            texts = generate(model, tokenizer, prompts, decoding, batch_size)
        return texts, sum(counts)

    prefill = Decoding.from_config(load_params(C.ROOT / "params.yaml").eval, max_new_tokens=1)

    (single, n_single), (batched, n_batched) = run(1), run(args.batch)
    same = sum(a == b for a, b in zip(single, batched, strict=True))
    if same < len(prompts):
        first = next(i for i, (a, b) in enumerate(zip(single, batched, strict=True)) if a != b)
        print(f"WARNING: {len(prompts) - same} of {len(prompts)} outputs differ between batch {args.batch} and "
              f"batch 1; first at prompt {first}:\n  batch 1: {single[first][:200]!r}\n"
              f"  batched: {batched[first][:200]!r}", file=sys.stderr)
    variants = {"batched": lambda: run(args.batch), "one_at_a_time": lambda: run(1)}
    if args.prefill:
        variants |= {"batched_prefill": lambda: run(args.batch, prefill),
                     "one_at_a_time_prefill": lambda: run(1, prefill)}
    times = C.interleaved(variants, args.repeats, args.device)
    decode = None
    if args.prefill:  # the tokens after the first, over the time after the prefill, per round
        rate_b = [(n_batched - len(prompts)) / (t - t0) for t, t0 in zip(times["batched"], times["batched_prefill"],
                                                                          strict=True)]
        rate_1 = [(n_single - len(prompts)) / (t - t0) for t, t0 in zip(times["one_at_a_time"],
                                                                         times["one_at_a_time_prefill"], strict=True)]
        decode = C.ratio(rate_b, rate_1)
    speedup = C.ratio([n_single / t for t in times["one_at_a_time"]], [n_batched / t for t in times["batched"]])
    speedup = C.stats([1 / r for r in speedup["runs"]])  # batched tok/s over one-at-a-time tok/s, per round
    print(f"\n{args.data or 'synthetic'}: {args.prompts} prompts of {min(map(len, prompts))}-"
          f"{max(map(len, prompts))} tokens, greedy, "
          f"repetition penalty 1.2, up to {args.max_new_tokens} new tokens; {args.model} on {args.device}, "
          f"{args.repeats} rounds\n")
    print(C.table(["variant", "s/run", "generated tokens", "generated tok/s"], [
        ["batched", C.fmt(C.stats(times["batched"]), ".3f"), n_batched,
         C.fmt(C.rate(n_batched, times["batched"]), ".1f")],
        ["one_at_a_time", C.fmt(C.stats(times["one_at_a_time"]), ".3f"), n_single,
         C.fmt(C.rate(n_single, times["one_at_a_time"]), ".1f")]]))
    print()
    comparisons = [[f"batch {args.batch} vs batch 1, generated tok/s", C.fmt(speedup) + "×", "≥ 4×"],
                   ["identical outputs", f"{same}/{len(prompts)}", f"{len(prompts)}/{len(prompts)}"]]
    if decode:
        share = C.ratio(times["batched_prefill"], times["batched"])
        comparisons += [[f"batch {args.batch} vs batch 1, decoding alone (prefill subtracted)", C.fmt(decode) + "×",
                         "—"], ["prefill's share of the batched run", C.fmt(share), "—"]]
    print(C.table(["comparison", "measured", "target"], comparisons))
    result = {
        "prompts": args.prompts, "generated_tokens": {"batched": n_batched, "one_at_a_time": n_single},
        "identical_outputs": same, "seconds": {k: C.stats(v) for k, v in times.items()},
        "generated_tokens_per_s": {"batched": C.rate(n_batched, times["batched"]),
                                   "one_at_a_time": C.rate(n_single, times["one_at_a_time"])},
        "speedup": speedup, "decode_only_speedup": decode, "targets": {"speedup": 4.0, "identical": len(prompts)}}
    C.write_result(args, result)
    if args.profile:
        result["profile"], text = C.profile_table(variants, args.device)
        print(f"\none profiled run each (self time per kind of op)\n\n{text}")
        C.write_result(args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
