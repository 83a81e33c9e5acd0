"""Training time of every objective on the prepared embedded benchmark, same data, same steps.

Runs the `train` stage once per objective (a child process each, as `dvc repro train` would) for
`--steps` optimizer steps on a copy of the project's params with only `train.objective`,
`train.max_steps` and the output folder changed, and reports seconds per optimizer step and the
ratio to ContextSFT (the one-pass baseline). Needs `data/prepared/` and `models/base/` (`make run`).

    .venv/bin/python benchmarks/train_objectives.py --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = ("sft", "context_sft", "mce_only", "dce_only", "mce_dce", "nextquill")


def run_objective(objective: str, steps: int, work: Path) -> dict:
    """Train one objective in a scratch root that links the real base model and prepared data."""
    root = work / objective
    shutil.rmtree(root, ignore_errors=True)
    (root / "models").mkdir(parents=True)
    (root / "data").mkdir()
    os.symlink(ROOT / "models" / "base", root / "models" / "base")
    os.symlink(ROOT / "data" / "prepared", root / "data" / "prepared")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(objective=objective, max_steps=steps, save_steps=10_000, resume="never")
    params["effects"]["estimator"] = "online"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, "-m", "nextquill.stages.train", "--params", str(root / "params.yaml"), "--root", str(root)]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
    metrics = json.loads((root / "reports" / "train_metrics.json").read_text())
    return {"objective": objective, "steps": metrics["steps"], "train_runtime_s": metrics["train_runtime"],
            "s_per_step": metrics["train_runtime"] / metrics["steps"], "last_loss": metrics.get("last_loss")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per objective")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "train_objectives")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_objectives.json")
    args = parser.parse_args(argv)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    rows = [run_objective(o, args.steps, args.work) for o in OBJECTIVES]
    base = next(r["s_per_step"] for r in rows if r["objective"] == "context_sft")
    print(f"{'objective':<12} {'s/step':>8} {'x ContextSFT':>13}")
    for r in rows:
        r["ratio_to_context_sft"] = round(r["s_per_step"] / base, 3)
        print(f"{r['objective']:<12} {r['s_per_step']:>8.2f} {r['ratio_to_context_sft']:>13.2f}")
    result = {"rows": rows, "steps": args.steps, "train": {k: params["train"][k] for k in
                                                          ("batch_size", "grad_accum", "max_examples")},
              "max_prompt_tokens": params["data"]["max_prompt_tokens"], "cpus": os.cpu_count(),
              "machine": platform.platform(), "processor": platform.processor()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
