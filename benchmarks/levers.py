"""CPU levers that leave the math alone, as ratios in one run: thread count and `torch.compile`.

Each is timed on the effect-estimation forward (both views, no grad, the model in the dtype `model.dtype: auto`
picks here), interleaved with the plain eager run on the same batch:
- `threads_1` against the default (torch uses every core);
- `compiled`: `torch.compile(model)` (inductor), timed after its compilation, whose cost is reported apart.

    .venv/bin/python benchmarks/levers.py --model embedded --repeats 3
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main() -> None:
    import torch

    from nextquill.config import load_params
    from nextquill.model.collator import CausalPairCollator
    from nextquill.model.loading import resolve_dtype
    from nextquill.model.views import answer_logits

    p = C.parser("levers", __doc__)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--prompt", type=int, default=768)
    p.add_argument("--target", type=int, default=256)
    args = p.parse_args()
    dtype = resolve_dtype(load_params(C.ROOT / "params.yaml").model.dtype)
    model, tok, pad, vocab = C.load(args.model, "cpu", args.seed)
    model = model.to(dtype).eval()
    rows = C.synthetic_rows(args.batch, (args.prompt * 3 // 4, args.prompt), (args.target // 2, args.target), vocab,
                            args.seed, eos=tok.eos_token_id or C.EOS)
    batch = CausalPairCollator(pad)(rows)
    keep = batch["labels"] != -100
    threads = torch.get_num_threads()

    def forward(m):
        def run():
            with torch.no_grad():
                answer_logits(m, batch, "h", keep)
                answer_logits(m, batch, "0", keep)
        return run

    def with_threads(n, fn):
        def run():
            torch.set_num_threads(n)
            try:
                fn()
            finally:
                torch.set_num_threads(threads)
        return run

    start = time.perf_counter()
    compiled = torch.compile(model)
    forward(compiled)()  # compiles for these shapes
    compile_seconds = time.perf_counter() - start
    fns = {"eager": forward(model), "threads_1": with_threads(1, forward(model)), "compiled": forward(compiled)}
    times = C.interleaved(fns, args.repeats, "cpu")
    result = {"dtype": str(dtype), "default_threads": threads, "compile_seconds": compile_seconds,
              "seconds": {n: C.stats(t) for n, t in times.items()},
              "speedup_vs_eager": {n: C.ratio(times["eager"], times[n]) for n in fns}}
    print(C.table(["variant", "seconds", "speed-up vs eager"],
                  [[n, C.fmt(result["seconds"][n]), C.fmt(result["speedup_vs_eager"][n])] for n in fns]))
    print(f"torch.compile took {compile_seconds:.1f} s to compile (first call); default threads {threads}")
    C.write_result(args, result)


if __name__ == "__main__":
    main()
