"""Helpers shared by the benchmark scripts: the common CLI, the model, synthetic rows, interleaved timing,
medians and ranges, peak memory, the Markdown table and the JSON result with the machine it ran on.

Every comparison is timed within one process, interleaved (A, B, A, B, ...), and reported as the median and
min-max range over `--repeats` rounds; a ratio is taken per round (A_i / B_i), so slow drifts of a loaded
machine affect both sides alike. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAD, EOS = 0, 1  # token ids of the tiny model


def parser(name: str, doc: str) -> argparse.ArgumentParser:
    """The options every script shares; `--out` defaults to benchmarks/results/<name>.json."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--model", default="tiny",
                   help="tiny (random 2-layer Llama built in-process), embedded (models/base, SmolLM2-135M) "
                        "or a transformers model folder. Default tiny")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda times under bf16 autocast")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds; medians and min-max reported")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows and the tiny model")
    p.add_argument("--out", type=Path, default=RESULTS / f"{name}.json", help="where the JSON goes")
    p.add_argument("--data", type=Path, help="a seeded sample of a prepared split's rows (e.g. "
                                             "data/prepared/train.parquet, written by `make run`) instead of "
                                             "synthetic ones; needs the model that tokenized them")
    return p


def machine_info(device: str) -> dict:
    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "device": device, "gpu": gpu, "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


class TinyTokenizer:
    """Just what `evaluate.generate` uses: pad/eos ids and `decode` (token ids as words)."""

    pad_token_id, eos_token_id = PAD, EOS

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        skip = {PAD, EOS} if skip_special_tokens else set()
        return " ".join(str(i) for i in ids.tolist() if i not in skip)


def load(spec: str, device: str, seed: int = 0):
    """(model in float32 on `device`, tokenizer, pad id, vocabulary size) for tiny | embedded | a folder."""
    import torch

    if spec == "tiny":
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                             tie_word_embeddings=True, bos_token_id=EOS, eos_token_id=EOS, pad_token_id=PAD)
        model, tokenizer = LlamaForCausalLM(config), TinyTokenizer()
    else:
        from nextquill.model.loading import load_model

        model, tokenizer = load_model(ROOT / "models" / "base" if spec == "embedded" else spec, dtype="float32")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return model.to(device), tokenizer, pad, model.config.vocab_size


def synthetic_rows(n: int, prompt: tuple[int, int], target: tuple[int, int], vocab: int, seed: int,
                   eos: int = EOS) -> list[dict]:
    """Prepared-dataset-shaped rows of random token ids: with-history prompt length in `prompt` (min, max), the
    no-history prompt about 1/4 of it, target length in `target` (min, max) ending with `eos`."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        n_h, n_t = rng.randint(*prompt), rng.randint(*target)
        ids = [rng.randrange(3, vocab) for _ in range(n_h + n_t - 1)]
        history_free = ids[:max(1, n_h // 8)] + ids[n_h - max(1, n_h // 8):n_h]  # head and tail: ~n_h/4
        rows.append({"prompt_ids_with": ids[:n_h], "prompt_ids_without": history_free,
                     "target_ids": ids[n_h:] + [eos]})
    return rows


def autocast(device: str):
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: str, warmup: int = 1):
    """Seconds per call of each function, timed A, B, A, B, ... for `repeats` rounds after `warmup` rounds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
        done = ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()) if round_ >= warmup else "warm-up"
        print(f"  round {round_ + 1}/{warmup + repeats}: {done}", file=sys.stderr)
    return times


def stats(values: Sequence[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": list(values)}


def ratio(num: Sequence[float], den: Sequence[float]) -> dict:
    """Per-round ratios num_i / den_i, summarised."""
    return stats([a / b for a, b in zip(num, den, strict=True)])


def rate(amount: float, seconds: Sequence[float]) -> dict:
    """Per-round throughput amount / seconds_i, summarised."""
    return stats([amount / s for s in seconds])


def fmt(s: dict, spec: str = ".2f") -> str:
    return f"{s['median']:{spec}} ({s['min']:{spec}}–{s['max']:{spec}})"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(args: argparse.Namespace, payload: dict) -> None:
    result = {**payload, "args": {k: shown(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "machine": machine_info(args.device)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def shown(path: Path) -> str:
    """A path as the results show it: relative to the project when inside it (no machine's layout in them)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT)) or "."
    except ValueError:
        return Path(path).name


def rss_kib(field: str = "VmRSS") -> int:
    """This process's resident set (VmRSS) or its peak (VmHWM), in KiB, from /proc/self/status."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the lifetime peak, KiB on Linux


@contextlib.contextmanager
def peak_memory(device: str, into: dict):
    """Peak memory (MiB) of the block above what was held when it started, stored in `into["peak_mib"]`.

    CPU: the process's peak RSS. Linux resets it when "5" is written to /proc/self/clear_refs; where that is not
    allowed the lifetime peak (ru_maxrss) is used, so run the block first in a fresh process (what the scripts
    do). CUDA: torch.cuda.max_memory_allocated.
    """
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        yield
        torch.cuda.synchronize()
        into["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
        into["peak_source"] = "VmHWM after clear_refs"
    except OSError:
        into["peak_source"] = "ru_maxrss (lifetime)"
    base = rss_kib()
    yield
    into["peak_mib"] = (rss_kib("VmHWM") - base) / 1024


# Buckets of a torch.profiler table: which aten ops count as what.
BUCKETS = (
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")),
    ("attention", ("attention",)),
    ("softmax / loss", ("softmax", "log_softmax", "nll_loss", "cross_entropy", "logsumexp")),
)


def profile(fn: Callable[[], object], device: str) -> dict:
    """One call of `fn` under torch.profiler: seconds per bucket (self time) and the matmul GFLOP it ran.

    Self times are summed over the ops of each bucket (matmul, attention, softmax / loss, the rest); FLOPs are
    what the profiler counts for matrix products, which is where a transformer's arithmetic is.
    """
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch_profile(activities=activities, with_flops=True) as prof:
        fn()
        sync(device)
    seconds = {name: 0.0 for name, _ in BUCKETS} | {"other": 0.0}
    flops = 0
    for event in prof.key_averages():
        self_us = event.self_device_time_total if device == "cuda" else event.self_cpu_time_total
        bucket = next((name for name, keys in BUCKETS if any(k in event.key for k in keys)), "other")
        seconds[bucket] += self_us / 1e6
        flops += event.flops or 0
    return {"seconds": seconds, "total_s": sum(seconds.values()), "matmul_gflop": flops / 1e9}


def profile_table(fns: dict[str, Callable[[], object]], device: str) -> tuple[dict, str]:
    """Profile one call of each function: the results by name, and a Markdown table of them."""
    prof = {name: profile(fn, device) for name, fn in fns.items()}
    return prof, profile_markdown(prof)


def profile_markdown(prof: dict[str, dict]) -> str:
    """A Markdown table of `profile` results by name."""
    buckets = list(next(iter(prof.values()))["seconds"])
    rows = [[name, f"{p['total_s']:.2f}", *(f"{p['seconds'][b]:.2f}" for b in buckets), f"{p['matmul_gflop']:.1f}",
             f"{p['matmul_gflop'] / max(p['seconds']['matmul'], 1e-9):.0f}"] for name, p in prof.items()]
    return table(["variant", "profiled s", *(f"{b} s" for b in buckets), "matmul GFLOP", "matmul GFLOP/s"], rows)


def prepared_rows(path: Path, n: int, seed: int) -> list[dict]:
    """A seeded sample of `n` rows (token ids of both views and the target) of a prepared split's parquet."""
    import pyarrow.parquet as pq

    columns = ["prompt_ids_with", "prompt_ids_without", "target_ids"]
    rows = pq.read_table(path, columns=columns).to_pylist()
    if len(rows) < n:
        raise SystemExit(f"{path}: {len(rows)} rows, {n} asked for")
    return random.Random(seed).sample(rows, n)

