"""bf16 against fp32 on the CPU: the training step, effect estimation and generation, as ratios in one run.

Variants (interleaved, same process, same rows):
- `fp32`: float32 weights, as `model.dtype: float32` loads them;
- `bf16`: bfloat16 base weights (`model.dtype: bfloat16`), LoRA adapters in float32 (peft keeps them so),
  loss terms in float32 (the objective upcasts the answer logits);
- `autocast`: float32 weights under `torch.autocast("cpu", dtype=torch.bfloat16)`.

Besides speed it reports what bf16 does to the numbers: the loss, the gradient of the LoRA weights, the DCE
of every answer token and the generated text, each against fp32 on the same inputs.

    .venv/bin/python benchmarks/precision.py --model embedded --repeats 3
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

VARIANTS = ("fp32", "bf16", "autocast")


def build(args):
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from nextquill.config import load_params
    from nextquill.model.collator import CausalPairCollator
    from nextquill.model.trainer import LossSettings, NextQuillTrainer
    from nextquill.model.views import WeightSettings

    params = load_params(C.ROOT / "params.yaml")
    lora = params.train.lora
    base, tokenizer, pad, vocab = C.load(args.model, "cpu", args.seed)
    rows = C.synthetic_rows(args.batch, (args.prompt * 3 // 4, args.prompt), (args.target // 2, args.target), vocab,
                            args.seed, eos=tokenizer.eos_token_id or C.EOS)
    models = {}
    for name in VARIANTS:  # the same random LoRA init on each copy (seeded), so only the precision differs
        model = copy.deepcopy(base)
        if name == "bf16":
            model = model.to(torch.bfloat16)  # peft keeps the adapters in float32 on a bf16 base
        torch.manual_seed(args.seed)
        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=0.0, init_lora_weights=False,
                            target_modules=list(lora.target_modules))
        models[name] = get_peft_model(model, config)
    contexts = {"fp32": contextlib.nullcontext, "bf16": contextlib.nullcontext,
                "autocast": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}
    settings = LossSettings.from_params(params, objective="nextquill")
    batch = CausalPairCollator(pad, settings.views)(rows)
    import tempfile

    from transformers import TrainingArguments

    targs = TrainingArguments(output_dir=str(Path(tempfile.gettempdir()) / "nq-bench-precision"), report_to="none",
                              use_cpu=True, remove_unused_columns=False, disable_tqdm=True)
    trainers = {n: NextQuillTrainer(model=m, args=targs, settings=settings) for n, m in models.items()}
    weights = WeightSettings.from_effects(params.effects)
    return params, models, contexts, trainers, batch, rows, tokenizer, pad, weights


def step_fn(trainer, batch, context):
    def run():
        trainer.model.zero_grad(set_to_none=True)
        with context():
            loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        return float(loss)
    return run


def main() -> None:
    import torch

    from nextquill.model.estimate import estimate
    from nextquill.model.generation import Decoding, generate

    p = C.parser("precision", __doc__)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--prompt", type=int, default=768)
    p.add_argument("--target", type=int, default=256)
    p.add_argument("--new-tokens", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    params, models, contexts, trainers, batch, rows, tok, pad, weights = build(args)
    result: dict = {"variants": list(VARIANTS)}

    # 1. training step: forward of both views + backward, the objective of params.yaml's train section
    steps = {n: step_fn(trainers[n], batch, contexts[n]) for n in VARIANTS}
    times = C.interleaved(steps, args.repeats, "cpu")
    losses = {n: steps[n]() for n in VARIANTS}
    grads = {n: torch.cat([w.grad.float().flatten() for name, w in models[n].named_parameters()
                           if w.grad is not None]) for n in VARIANTS}
    result["train_step"] = {"seconds": {n: C.stats(t) for n, t in times.items()},
                            "speedup_vs_fp32": {n: C.ratio(times["fp32"], times[n]) for n in VARIANTS},
                            "loss": losses,
                            "grad_rel_error_vs_fp32": {n: float((grads[n] - grads["fp32"]).norm()
                                                                / grads["fp32"].norm()) for n in VARIANTS}}

    # 2. effect estimation (no_grad, both views), all rows
    def estimated(n):
        with contexts[n]():
            return [d for _, d, _ in estimate(models[n], rows, len(rows), weights, pad, desc=f"effects {n}")]
    times = C.interleaved({n: (lambda n=n: estimated(n)) for n in VARIANTS}, args.repeats, "cpu")
    dce = {n: torch.tensor([x for d in estimated(n) for x in d]) for n in VARIANTS}
    delta = params.effects.delta
    result["effects"] = {"seconds": {n: C.stats(t) for n, t in times.items()},
                         "speedup_vs_fp32": {n: C.ratio(times["fp32"], times[n]) for n in VARIANTS},
                         "dce_max_abs_diff_vs_fp32": {n: float((dce[n] - dce["fp32"]).abs().max()) for n in VARIANTS},
                         "threshold_flips_vs_fp32": {n: int(((dce[n] > delta) != (dce["fp32"] > delta)).sum())
                                                     for n in VARIANTS},
                         "tokens": int(dce["fp32"].numel())}

    # 3. generation: greedy, the decoding of params.yaml's eval section, `--new-tokens` new tokens
    decoding = Decoding.from_config(params.eval, max_new_tokens=args.new_tokens)
    prompts = [r["prompt_ids_with"] for r in rows]

    def generated(n):
        with contexts[n]():
            return generate(models[n], tok, prompts, decoding, len(prompts), desc=f"decode {n}")
    times = C.interleaved({n: (lambda n=n: generated(n)) for n in VARIANTS}, args.repeats, "cpu")
    texts = {n: generated(n) for n in VARIANTS}
    result["generation"] = {"seconds": {n: C.stats(t) for n, t in times.items()},
                            "speedup_vs_fp32": {n: C.ratio(times["fp32"], times[n]) for n in VARIANTS},
                            "identical_outputs_vs_fp32": {n: sum(a == b for a, b in zip(texts[n], texts["fp32"],
                                                                                        strict=True))
                                                          for n in VARIANTS},
                            "outputs": len(prompts)}

    rows_out = [[part, n, C.fmt(result[part]["seconds"][n], ".2f"), C.fmt(result[part]["speedup_vs_fp32"][n])]
                for part in ("train_step", "effects", "generation") for n in VARIANTS]
    print(C.table(["part", "variant", "seconds", "speed-up vs fp32"], rows_out))
    print(f"loss {losses}; grad relative error {result['train_step']['grad_rel_error_vs_fp32']}")
    print(f"DCE max |diff| {result['effects']['dce_max_abs_diff_vs_fp32']}, threshold flips "
          f"{result['effects']['threshold_flips_vs_fp32']} of {result['effects']['tokens']}; identical outputs "
          f"{result['generation']['identical_outputs_vs_fp32']} of {len(prompts)}")
    C.write_result(args, result)


if __name__ == "__main__":
    main()
