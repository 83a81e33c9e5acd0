"""One NextQuill training step (forward + backward) shaped like the official code, against ours and ContextSFT.

Same model, same rows, same loss value (checked in float32 before timing). `official`: both views left-padded to
a fixed length (longest prompt + longest target + 1, as the official 2048 + 2048 + 1), full-vocabulary logits at
every position of both passes, every loss term from those logits. `ours`: `CausalPairCollator` and
`NextQuillTrainer.compute_loss`. `context_sft`: ours with one pass (with history only). Peak memory comes from
one step in a fresh child process per variant.

    .venv/bin/python benchmarks/train_step.py --model tiny --prompt 64 --target 16 --repeats 2
    .venv/bin/python benchmarks/train_step.py --model embedded             # SmolLM2-135M, 1024 + 256 tokens
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

VARIANTS = ("official", "ours", "context_sft")


def official_loss(model, rows: list[dict], pad_id: int, length: int, alpha=0.1, delta=0.05, lam=0.9, eps=0.1):
    """NextQuill loss the way the official code computes it (docs/method.md: losses in code form, padding).

    One difference: position ids restart at 0 after the left padding (the official forward passes none), so
    that the loss can equal ours; it costs nothing.
    """
    def pad(key: str):
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, row in enumerate(rows):
            seq = list(row[key]) + list(row["target_ids"])
            ids[i, length - len(seq):] = torch.tensor(seq)
            mask[i, length - len(seq):] = 1
            labels[i, length - len(row["target_ids"]):] = torch.tensor(row["target_ids"])
        device = next(model.parameters()).device
        return ids.to(device), mask.to(device), (mask.cumsum(-1) - 1).clamp(min=0).to(device), labels.to(device)

    ids_h, mask_h, pos_h, labels = pad("prompt_ids_with")
    ids_0, mask_0, pos_0, _ = pad("prompt_ids_without")  # the with-history labels serve both views
    z_h = model(input_ids=ids_h, attention_mask=mask_h, position_ids=pos_h, use_cache=False).logits
    z_0 = model(input_ids=ids_0, attention_mask=mask_0, position_ids=pos_0, use_cache=False).logits
    z_h, z_0 = z_h[:, :-1].float(), z_0[:, :-1].float()  # (B, L-1, V): every position, every token
    y = labels[:, 1:]  # (B, L-1)
    answer = y != -100
    ce_h = F.cross_entropy(z_h.transpose(1, 2), y, reduction="none")  # (B, L-1), 0 where y = -100
    with torch.no_grad():
        gold = y.clamp(min=0).unsqueeze(-1)
        p1 = torch.softmax(z_h, dim=-1).gather(-1, gold).squeeze(-1)
        p2 = torch.softmax(z_0, dim=-1).gather(-1, gold).squeeze(-1)
        w = torch.where(p1 - p2 > delta, lam, eps) * answer
        w = w / w.sum()
    l_n = (w * ce_h).sum()
    l_p = F.cross_entropy((z_h - z_0).transpose(1, 2), y)  # mean over answer tokens, unweighted
    return l_n + alpha * l_p


def build(args):
    """Model, rows, and one zero-argument loss function per variant."""
    from transformers import TrainingArguments

    from nextquill.config import load_params
    from nextquill.model.collator import CausalPairCollator
    from nextquill.model.trainer import LossSettings, NextQuillTrainer

    model, _, pad, vocab = C.load(args.model, args.device, args.seed)
    if args.lora:
        from peft import LoraConfig, get_peft_model

        modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # params.yaml
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=modules,
                                                 task_type="CAUSAL_LM"))
    model.train()
    if args.data:
        rows = C.prepared_rows(args.data, args.batch, args.seed)
    else:
        rows = C.synthetic_rows(args.batch, (args.prompt * 3 // 4, args.prompt), (args.target // 2, args.target),
                                vocab, args.seed)
    longest = max(len(r["prompt_ids_with"]) + len(r["target_ids"]) for r in rows)
    length = args.fixed_length or args.prompt + args.target + 1  # the official pads to its maxima, not the batch's
    if length < longest:
        raise SystemExit(f"--fixed-length {length} is shorter than the longest row ({longest} tokens)")
    targs = TrainingArguments(output_dir=str(Path(tempfile.gettempdir()) / "nq-bench-trainer"), report_to="none",
                              use_cpu=args.device == "cpu", remove_unused_columns=False, disable_tqdm=True)

    def ours(objective: str, views: tuple[str, ...]):
        settings = LossSettings.from_params(load_params(C.ROOT / "params.yaml"), objective=objective)
        trainer = NextQuillTrainer(model=model, args=targs, settings=settings)
        collate = CausalPairCollator(pad, views)

        def loss():
            batch = {k: v.to(args.device) for k, v in collate(rows).items()}
            return trainer.compute_loss(model, batch)
        return loss

    losses = {"official": lambda: official_loss(model, rows, pad, length),
              "ours": ours("nextquill", ("h", "0")), "context_sft": ours("context_sft", ("h",))}
    return model, rows, length, losses


def step(model, loss_fn, device: str) -> float:
    model.zero_grad(set_to_none=True)
    with C.autocast(device):
        loss = loss_fn()
    loss.backward()
    return loss.item()


def worker(args) -> None:
    """Child process: one step of `args.worker`; prints its peak memory, or with --profile its profile
    (after one unprofiled warm-up step), as JSON."""
    model, _, _, losses = build(args)
    fn = lambda: step(model, losses[args.worker], args.device)  # noqa: E731
    if args.profile:
        fn()
        print(json.dumps(C.profile(fn, args.device)))
        return
    into: dict = {}
    with C.peak_memory(args.device, into):
        fn()
    print(json.dumps(into))


def in_children(argv: list[str], what: str) -> dict:
    """`what` ("memory" or "profile") of one step per variant, each in a fresh child process: run before this
    process holds anything, and a child that runs out of memory costs only its own number."""
    argv = [a for a in argv if a not in ("--no-memory", "--profile")] + (["--profile"] if what == "profile" else [])
    out = {}
    for variant in VARIANTS:
        proc = subprocess.run([sys.executable, __file__, *argv, "--worker", variant], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"  {what} of {variant}: child failed ({proc.returncode}): {proc.stderr[-300:]}", file=sys.stderr)
            continue
        out[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {what} of one {variant} step: done", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = C.parser("train_step", __doc__)
    p.add_argument("--batch", type=int, default=2, help="examples per step (train.batch_size)")
    p.add_argument("--prompt", type=int, default=1024, help="longest with-history prompt; rows draw 3/4 to all")
    p.add_argument("--target", type=int, default=256, help="longest target; rows draw 1/2 to all")
    p.add_argument("--fixed-length", type=int, help="the official-shaped reference's padded length; default "
                                                    "--prompt + --target + 1 (the official code: 2048 + 2048 + 1)")
    p.add_argument("--lora", action="store_true", help="LoRA r=8 on every projection (params.yaml) instead of "
                                                       "full fine-tuning")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--profile", action="store_true", help="also profile one step of each variant (torch.profiler)"
                                                          ": time per kind of op and matmul GFLOP")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    # Children first: the official step's full-vocabulary tensors take GBs that this process would keep.
    memory = {} if args.no_memory else in_children(argv, "memory")
    prof = in_children(argv, "profile") if args.profile else {}
    model, rows, length, losses = build(args)
    with torch.no_grad():  # float32, no autocast: the two implementations must agree before they are timed
        ref, ours = losses["official"]().item(), losses["ours"]().item()
    if abs(ref - ours) > 1e-4 * abs(ref):
        raise SystemExit(f"losses differ: official {ref:.6f}, ours {ours:.6f}")
    print(f"loss check: official {ref:.6f}, ours {ours:.6f} (rtol 1e-4)", file=sys.stderr)
    times = C.interleaved({k: (lambda f=f: step(model, f, args.device)) for k, f in losses.items()},
                          args.repeats, args.device)

    answer = sum(len(r["target_ids"]) for r in rows)
    len_h = sum(len(r["prompt_ids_with"]) + len(r["target_ids"]) for r in rows)
    len_0 = sum(len(r["prompt_ids_without"]) + len(r["target_ids"]) for r in rows)
    real = {"official": len_h + len_0, "ours": len_h + len_0, "context_sft": len_h}
    table = []
    for name in VARIANTS:
        mib = memory.get(name, {}).get("peak_mib")
        table.append([name, C.fmt(C.stats(times[name]), ".3f"), C.fmt(C.rate(answer, times[name]), ".0f"),
                      C.fmt(C.rate(real[name], times[name]), ".0f"), "—" if mib is None else f"{mib:.0f}"])
    speedup = C.ratio(times["official"], times["ours"])
    vs_sft = C.ratio(times["ours"], times["context_sft"])
    mem_ratio = (memory["ours"]["peak_mib"] / memory["official"]["peak_mib"]
                 if {"ours", "official"} <= set(memory) else None)
    floor = 1 + len_0 / len_h
    source = args.data or "synthetic rows"
    print(f"\n{source}: batch {args.batch}, with-history {len_h} tokens, no-history {len_0}, answers {answer}; "
          f"official pads both views to {length}; {args.model} on {args.device}, {args.repeats} rounds\n")
    print(C.table(["variant", "s/step", "answer tok/s", "real tok/s", "peak MiB"], table))
    print()
    print(C.table(["comparison", "measured", "target"], [
        ["ours vs official, throughput", C.fmt(speedup) + "×", "≥ 3×"],
        ["ours / official, peak memory", "—" if mem_ratio is None else f"{mem_ratio:.2f}×", "≤ 0.5×"],
        ["NextQuill / ContextSFT, step time", C.fmt(vs_sft) + "×", f"≤ 1.35× (floor 1 + len0/len_h = {floor:.2f})"],
    ]))
    if {"ours", "official"} <= set(prof):
        flop_ratio = prof["official"]["matmul_gflop"] / prof["ours"]["matmul_gflop"]
        print(f"\none profiled step each (self time per kind of op; profiling slows every op alike)\n\n"
              f"{C.profile_markdown(prof)}\n\n"
              f"official / ours matmul arithmetic: {flop_ratio:.2f}× (the speed-up a compute-bound device allows)")
    C.write_result(args, {
        "loss": {"official": ref, "ours": ours}, "fixed_length": length,
        "tokens": {"answer": answer, "with_history": len_h, "without_history": len_0},
        "seconds_per_step": {k: C.stats(v) for k, v in times.items()},
        "answer_tokens_per_s": {k: C.rate(answer, v) for k, v in times.items()},
        "real_tokens_per_s": {k: C.rate(real[k], v) for k, v in times.items()}, "peak_memory": memory,
        "speedup_vs_official": speedup, "memory_ratio_vs_official": mem_ratio, "nextquill_over_context_sft": vs_sft,
        "context_sft_floor": floor, "profile": prof,
        "targets": {"speedup": 3.0, "memory_ratio": 0.5, "over_context_sft": 1.35}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
