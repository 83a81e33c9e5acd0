"""The comparison protocol on the real corpus of `real_corpus.py`: SFT, ContextSFT and NextQuill with paired CIs.

    .venv/bin/python benchmarks/real_corpus_compare.py                  # seed 42, the three methods + zero-shot
    .venv/bin/python benchmarks/real_corpus_compare.py --seeds 42 43 44

It builds a project root of its own (`--root`, default `.work/real_corpus/`, git-ignored) holding the converted
corpus, the embedded base model (a link to `models/base`: run `dvc repro base_model` first) and a parameters
file: `params.yaml` with only the data format changed (`longlamp`, task `topic_writing`) and the comparison's
method list and seeds set here, so model, training budget, decoding and statistics are the embedded
benchmark's. Then it runs, with the pipeline's own commands, `prepare`, each method
(`python -m nextquill.compare run`), and the table, and copies the table and every run's record to
`--results` (default `benchmarks/results/real_corpus/`). The records already in `--results` are copied
into the root first and a run whose record exists is not run again, so an interrupted run continues where it
stopped, on this machine or on a fresh clone; the table holds every recorded run, not only this call's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
DATA = {"format": "longlamp", "raw_dir": "data/raw/sotu", "task": "topic_writing"}


def recorded(runs: Path) -> tuple[list[str], list[str], list[int]]:
    """Zero-shot methods, trained methods and seeds with a record (`run.json`) under `runs`."""
    zero_shot, methods, seeds = [], [], []
    for record in sorted(runs.glob("*/run.json")):
        zero_shot.append(record.parent.name)
    for record in sorted(runs.glob("*/seed*/run.json")):
        methods.append(record.parent.parent.name)
        seeds.append(int(record.parent.name.removeprefix("seed")))
    return zero_shot, methods, seeds


def union(*lists: list) -> list:
    """The items of `lists` in first-seen order, each once."""
    return list(dict.fromkeys(item for items in lists for item in items))


def write_params(root: Path, args: argparse.Namespace) -> Path:
    """`params.yaml` with the corpus as data; methods and seeds: this call's and every recorded run's."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["data"].update(DATA)
    zero_shot, methods, seeds = recorded(root / "comparison" / "runs")
    seeds = sorted(union(seeds, args.seeds))
    params["compare"].update({"zero_shot": union(args.zero_shot, zero_shot), "methods": union(args.methods, methods),
                              "readings": [], "derived": [], "seeds": seeds, "reading_seeds": seeds})
    path = root / "params.yaml"
    path.write_text("# Written by benchmarks/real_corpus_compare.py from the project's params.yaml.\n"
                    + yaml.safe_dump(params, sort_keys=False))
    return path


def prepare_root(root: Path, max_profile: int) -> None:
    """The converted corpus and a link to the base model under `root`."""
    base = PROJECT / "models" / "base"
    if not (base / "config.json").is_file():
        sys.exit(f"error: {base} holds no model; run `dvc repro base_model` first")
    (root / "models").mkdir(parents=True, exist_ok=True)
    link = root / "models" / "base"
    if not link.exists():
        link.symlink_to(base, target_is_directory=True)
    raw = root / DATA["raw_dir"]
    provenance = raw / "PROVENANCE.json"
    if provenance.is_file() and json.loads(provenance.read_text())["parameters"]["max_profile"] != max_profile:
        sys.exit(f"error: {raw} was converted with another --max-profile; remove {root} to start over")
    if not provenance.is_file():
        run([str(PROJECT / "benchmarks" / "real_corpus.py"), "--out", str(raw), "--max-profile", str(max_profile)])


def run(argv: list[str]) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run([sys.executable, *argv], check=True, cwd=PROJECT)


def copy_results(root: Path, results: Path) -> None:
    """The table and each run's record (small files) into the repository."""
    results.mkdir(parents=True, exist_ok=True)
    for name in ("results.md", "results.json"):
        shutil.copy2(root / "comparison" / name, results / name)
    shutil.copytree(root / "comparison" / "runs", results / "runs", dirs_exist_ok=True)
    shutil.copy2(root / DATA["raw_dir"] / "PROVENANCE.json", results / "PROVENANCE.json")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=PROJECT / ".work" / "real_corpus")
    p.add_argument("--results", type=Path, default=PROJECT / "benchmarks" / "results" / "real_corpus")
    p.add_argument("--methods", nargs="+", default=["sft", "context_sft", "nextquill"])
    p.add_argument("--zero-shot", nargs="*", default=["base_history"])
    p.add_argument("--seeds", nargs="+", type=int, default=[42])
    p.add_argument("--max-profile", type=int, default=16, help="older passages kept per profile (converter)")
    args = p.parse_args(argv)
    root = args.root.resolve()
    prepare_root(root, args.max_profile)
    if (args.results / "runs").is_dir():  # committed records: not run twice
        shutil.copytree(args.results / "runs", root / "comparison" / "runs", dirs_exist_ok=True)
    params = write_params(root, args)
    common = ["--root", str(root), "--params", str(params)]
    if not (root / "data" / "prepared" / "test.parquet").is_file():
        run(["-m", "nextquill.stages.prepare", *common])
    runs = [(m, None) for m in args.zero_shot] + [(m, s) for m in args.methods for s in args.seeds]
    for method, seed in runs:
        record = root / "comparison" / "runs" / method / (f"seed{seed}" if seed is not None else "")
        if not (record / "run.json").is_file():
            seeded = ["--seed", str(seed)] if seed is not None else []
            run(["-m", "nextquill.compare", "run", method, *seeded, *common])
    run(["-m", "nextquill.compare", "table", *common])
    copy_results(root, args.results)


if __name__ == "__main__":
    main()
