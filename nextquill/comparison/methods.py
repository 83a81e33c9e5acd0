"""The methods of the comparison: overrides of `params.yaml` and where each method's inputs come from.

One method = overrides plus provenance (another method's adapter, or its adapter as θ_D); the stage code
is the pipeline's own. Each kind of method has its own entry module, so each DVC stage depends on the code
it runs and nothing else: `zero_shot` (evaluate the base model, once), `trained` (train, then evaluate, once
per seed: `compare.seeds` for `compare.methods`, `compare.reading_seeds` for `compare.readings`) and `derived`
(built on the context_sft run of the same seed, at `compare.reading_seeds`); `table` reads the finished runs.

A run works in `comparison/work/<method>[/seed<s>]/` (adapters, effects, its own prepared data: DVC-cached,
not in git) and records its result in `comparison/runs/<method>[/seed<s>]/` (metrics, per-example scores and
predictions, timings, commit and parameters: small files kept in git, from which the table is rebuilt).
"""

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nextquill.config import Params, flatten, load_params
from nextquill.io import write_json
from nextquill.paths import Paths
from nextquill.provenance import params_digest, source_commit

log = logging.getLogger(__name__)
WORK = Path("comparison") / "work"  # each run's working outputs: DVC-cached
RUNS = Path("comparison") / "runs"  # each run's record: in git
METRICS = ("rouge1", "rougeL", "meteor", "bleu")
BASELINE = "context_sft"


@dataclass(frozen=True)
class Method:
    label: str  # the row of the table
    overrides: dict[str, Any] = field(default_factory=dict)
    trains: bool = True
    own_prepared: bool = False  # prepares its own data (another history selection)
    adapter_from: str | None = None  # decodes another method's adapter
    reference_from: str | None = None  # θ_D = another method's adapter
    steered: bool = False
    per_user: bool = False  # OPPU: one LoRA per test user, trained and decoded by `comparison.oppu`

    @property
    def kind(self) -> str:
        """The comparison stage (and entry module) that runs the method."""
        if self.adapter_from or self.reference_from:
            return "derived"
        return "trained" if self.trains else "zero_shot"

    @property
    def seeded(self) -> bool:
        """Runs once per training seed: everything but the zero-shot baselines (greedy decoding of a fixed model)."""
        return self.kind != "zero_shot"


class MissingRun(RuntimeError):
    """A run this one builds on is not in the workspace (a fresh clone keeps the records, not the adapters)."""


BASE = {"eval.model": "base"}
METHODS: dict[str, Method] = {
    "base_no_history": Method("Base model, no history", {**BASE, "eval.view": "without_history"}, trains=False),
    "base_history": Method("Base model + history", {**BASE, "eval.view": "with_history"}, trains=False),
    "base_steering": Method("Base model + history, Context Steering", {**BASE, "eval.view": "with_history"},
                            trains=False, steered=True),
    "base_retrieval": Method("Base model + relevance-retrieved history",
                             {**BASE, "eval.view": "with_history", "data.history_selection": "relevance"},
                             trains=False, own_prepared=True),
    "sft": Method("SFT (no history)", {"train.objective": "sft"}),
    "context_sft": Method("ContextSFT", {"train.objective": "context_sft"}),
    "context_sft_relevance": Method("ContextSFT, relevance-retrieved history",
                                    {"train.objective": "context_sft", "data.history_selection": "relevance"},
                                    own_prepared=True),
    "summary": Method("ContextSFT on a profile summary (LLM-TRSR)",
                      {"train.objective": "context_sft", "data.history_selection": "summary"}, own_prepared=True),
    "oppu": Method("OPPU: one LoRA per user on ContextSFT", {"train.objective": "context_sft"},
                   adapter_from="context_sft", per_user=True),
    "context_sft_steering": Method("ContextSFT, Context Steering decoding", {"train.objective": "context_sft"},
                                   trains=False, adapter_from="context_sft", steered=True),
    "mce_only": Method("MCE only", {"train.objective": "mce_only"}),
    "dce_only": Method("DCE only", {"train.objective": "dce_only"}),
    "mce_dce": Method("MCE + DCE (no L_p)", {"train.objective": "mce_dce"}),
    "nextquill": Method("NextQuill (online DCE)", {"train.objective": "nextquill", "train.lp": "official",
                                                   "effects.estimator": "online"}),
    "nextquill_eos_effect": Method("NextQuill, end-of-text weighted by its DCE (official)",
                                   {"train.objective": "nextquill", "train.lp": "official",
                                    "effects.estimator": "online", "effects.end_token": "effect"}),
    "nextquill_reference": Method("NextQuill (reference θ_D DCE)",
                                  {"train.objective": "nextquill", "effects.estimator": "reference"},
                                  reference_from="context_sft"),
    "nextquill_weighted": Method("NextQuill, ω-weighted L_p", {"train.objective": "nextquill", "train.lp": "weighted",
                                                                "effects.estimator": "online"}),
    "nextquill_e2e": Method("NextQuill, effect-to-effect L_p (θ_D DCE)",
                            {"train.objective": "nextquill", "train.lp": "effect_to_effect",
                             "effects.estimator": "reference"}, reference_from="context_sft"),
    "nextquill_base": Method("NextQuill (base-model DCE)",
                             {"train.objective": "nextquill", "effects.estimator": "base"}),
}


def method_params(name: str, params_file: Path, seed: int | None = None, extra: dict | None = None) -> Params:
    """`params.yaml` with the comparison's test sample (`compare.eval_examples`), the method's overrides, `extra`
    ones (a steered method's λ) and, for a seeded run, `train.seed`."""
    params = load_params(params_file)
    overrides = {"eval.max_examples": params.compare.eval_examples} | dict(METHODS[name].overrides) | (extra or {})
    if seed is not None:
        overrides["train.seed"] = seed
    return load_params(params_file, overrides)


Step = Callable[[Params, Paths], Any]


def run_name(seed: int | None) -> str:
    return f"seed{seed}" if seed is not None else ""


def work_dir(root: Path, name: str, seed: int | None) -> Path:
    return root / WORK / name / run_name(seed)


def record_dir(root: Path, name: str, seed: int | None) -> Path:
    return root / RUNS / name / run_name(seed)


def comparison_progress(name: str, seed: int | None, root: Path, params_file: Path) -> str:
    """Where this run stands among the comparison's runs: how many are recorded and which are still to do.

    Read from the file, not from `Params`: the list is shown, never used, so it must not become a dependency
    of each method's stage (adding a method would re-run every other one).
    """
    import yaml

    compare = (yaml.safe_load(params_file.read_text()) or {}).get("compare") or {}
    methods = compare.get("methods") or []

    def seeds(n: str) -> list:
        if not METHODS[n].seeded:
            return [None]
        return compare.get("seeds" if n in methods else "reading_seeds") or [None]

    runs = [(n, s) for n in [*compare.get("zero_shot", []), *methods, *compare.get("readings", []),
                             *compare.get("derived", [])] if n in METHODS for s in seeds(n)]
    done = [r for r in runs if (record_dir(root, *r) / "run.json").is_file() and r != (name, seed)]
    todo = [f"{n}{'@' + str(s) if s is not None else ''}" for n, s in runs if (n, s) not in done and
            (n, s) != (name, seed)]
    return (f"run {name}{'@' + str(seed) if seed is not None else ''}; {len(done)} of {len(runs)} recorded; "
            f"{len(todo)} to do after it: {', '.join(todo[:8]) or '-'}{' ...' if len(todo) > 8 else ''}")


def method_paths(name: str, root: Path, seed: int | None = None) -> Paths:
    method = METHODS[name]
    return Paths(root, out=work_dir(root, name, seed), own_prepared=method.own_prepared,
                 reference_dir=work_dir(root, method.reference_from, seed) / "models" / "adapter"
                 if method.reference_from else None)


def _needed(folder: Path, name: str, seed: int | None) -> Path:
    if not folder.exists():
        raise MissingRun(
            f"{folder} is missing: method {name!r} builds on it, and this workspace does not hold it (a fresh "
            f"clone has the runs' records in git, not their adapters); rebuild it with "
            f"`dvc repro -f -s comparison/dvc.yaml:trained@{name}-{seed}` and run this one again")
    return folder


def execute(name: str, root: Path, params_file: Path, steps: dict[str, Step], seed: int | None = None,
            extra: dict | None = None) -> dict:
    """Run `steps` (in order: prepare, effects, train, evaluate or oppu, those the kind has) for one run.

    A method that decodes another's adapter gets that run's adapter (same seed) copied first; the run's record
    (`record_run`) says what ran, from which commit and parameters, and how long each step took.
    """
    method = METHODS[name]
    if method.seeded != (seed is not None):
        raise ValueError(f"method {name!r} {'needs' if method.seeded else 'takes no'} training seed")
    params, paths = method_params(name, params_file, seed, extra), method_paths(name, root, seed)
    seconds: dict[str, float] = {}
    log.info("comparison: %s", comparison_progress(name, seed, root, params_file))
    if method.adapter_from:
        source = _needed(work_dir(root, method.adapter_from, seed) / "models" / "adapter", method.adapter_from, seed)
        shutil.copytree(source, paths.adapter, dirs_exist_ok=True)
    if method.reference_from:
        _needed(paths.reference_dir, method.reference_from, seed)
    for step, run in steps.items():
        if step == "prepare" and not method.own_prepared:
            continue
        if step == "effects" and params.effects.estimator == "online":
            continue
        if step in ("effects", "train") and not method.trains:
            continue
        start = time.perf_counter()
        run(params, paths)
        seconds[step] = round(time.perf_counter() - start, 1)
    return record_run(name, seed, root, params, paths, seconds)


RECORDED = {  # what a run's record keeps, from its work folder: small files only
    "metrics.json": ("reports", "metrics.json"),
    "predictions.jsonl": ("data", "eval", "predictions.jsonl"),
    "train_metrics.json": ("reports", "train_metrics.json"),
    "effects.json": ("reports", "effects.json"),
    "summaries.jsonl": ("data", "prepared", "summaries.jsonl"),
    "oppu.json": ("reports", "oppu.json"),
}


def record_run(name: str, seed: int | None, root: Path, params: Params, paths: Paths, seconds: dict) -> dict:
    """Copy the run's small results into `comparison/runs/<method>[/seed<s>]/` and write its `run.json`."""
    out = record_dir(root, name, seed)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    work = work_dir(root, name, seed)
    for target, parts in RECORDED.items():
        source = work.joinpath(*parts)
        if source.is_file():
            shutil.copyfile(source, out / target)
    values = run_values(params)
    info = {"method": name, "label": METHODS[name].label, "kind": METHODS[name].kind, "seed": seed,
            "seconds": seconds, "overrides": method_params_overrides(name, params, seed),
            "commit": source_commit(root), "params_digest": params_digest(values), "params": values}
    write_json(out / "run.json", info)
    return {k: info[k] for k in ("method", "seed", "seconds", "commit", "params_digest")}


SHAPING = ("base.", "model.", "synthesize.", "data.", "effects.", "train.", "eval.", "compare.steering",
           "compare.oppu_")


def run_values(params: Params) -> dict[str, Any]:
    """The parameters that shape one run (not tracking, registry, or the lists of other methods and seeds)."""
    return {k: v for k, v in flatten(params).items() if k.startswith(SHAPING)}


def method_params_overrides(name: str, params: Params, seed: int | None) -> dict[str, Any]:
    overrides = dict(METHODS[name].overrides)
    if METHODS[name].steered:
        overrides["eval.steering"] = params.eval.steering
    if seed is not None:
        overrides["train.seed"] = seed
    return overrides


def read_record(folder: Path) -> dict | None:
    """A recorded run: its run.json, metrics and per-example predictions; None when it has not run."""
    files = [folder / "run.json", folder / "metrics.json", folder / "predictions.jsonl"]
    if not all(f.is_file() for f in files):
        return None
    info, metrics = json.loads(files[0].read_text()), json.loads(files[1].read_text())
    predictions = [json.loads(line) for line in files[2].read_text().splitlines() if line.strip()]
    train = folder / "train_metrics.json"
    return {"info": info, "metrics": metrics, "predictions": predictions,
            "train": json.loads(train.read_text()) if train.is_file() else {}}
