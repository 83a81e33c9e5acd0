"""The methods of the comparison: overrides of `params.yaml` and where each method's inputs come from.

One method = overrides plus provenance (another method's adapter, or its adapter as θ_D); the stage code
is the pipeline's own, writing into `comparison/runs/<method>/`. Each kind of method has its own entry
module, so each DVC stage depends on the code it runs and nothing else: `zero_shot` (evaluate the base
model), `trained` (train, then evaluate) and `derived` (built on another method's run); `table` reads
the finished runs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nextquill.config import Params, load_params
from nextquill.io import write_json
from nextquill.paths import Paths

log = logging.getLogger(__name__)
RUNS = Path("comparison") / "runs"
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


BASE = {"eval.model": "base"}
METHODS: dict[str, Method] = {
    "base_no_history": Method("Base model, no history", {**BASE, "eval.view": "without_history"}, trains=False),
    "base_history": Method("Base model + history", {**BASE, "eval.view": "with_history"}, trains=False),
    "base_steering": Method("Base model + history, Context Steering", {**BASE, "eval.view": "with_history"},
                            trains=False, steered=True),
    "sft": Method("SFT (no history)", {"train.objective": "sft"}),
    "context_sft": Method("ContextSFT", {"train.objective": "context_sft"}),
    "context_sft_relevance": Method("ContextSFT, relevance-retrieved history",
                                    {"train.objective": "context_sft", "data.history_selection": "relevance"},
                                    own_prepared=True),
    "context_sft_steering": Method("ContextSFT, Context Steering decoding", {"train.objective": "context_sft"},
                                   trains=False, adapter_from="context_sft", steered=True),
    "mce_only": Method("MCE only", {"train.objective": "mce_only"}),
    "dce_only": Method("DCE only", {"train.objective": "dce_only"}),
    "mce_dce": Method("MCE + DCE (no L_p)", {"train.objective": "mce_dce"}),
    "nextquill": Method("NextQuill (online DCE)", {"train.objective": "nextquill", "train.lp": "official",
                                                   "effects.estimator": "online"}),
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


def method_params(name: str, params_file: Path) -> Params:
    method = METHODS[name]
    params = load_params(params_file)
    overrides = dict(method.overrides)
    if method.steered:
        overrides["eval.steering"] = params.compare.steering
    return load_params(params_file, overrides)


Step = Callable[[Params, Paths], Any]


def comparison_progress(name: str, root: Path, params_file: Path) -> str:
    """Where `name` stands among the comparison's methods: which are done (have a run) and which are to do.

    Read from the file, not from `Params`: the list is shown, never used, so it must not become a dependency
    of each method's stage (adding a method would re-run every other one).
    """
    import yaml

    compare = (yaml.safe_load(params_file.read_text()) or {}).get("compare") or {}
    names = [*compare.get("zero_shot", []), *compare.get("methods", []), *compare.get("derived", [])]
    done = [n for n in names if (root / RUNS / n / "method.json").is_file() and n != name]
    todo = [n for n in names if n not in done and n != name]
    position = f"{names.index(name) + 1} of {len(names)}" if name in names else "not in compare.*"
    return (f"method {name} ({position}); {len(done)} done: {', '.join(done) or '-'}; "
            f"{len(todo)} to do after it: {', '.join(todo) or '-'}")


def method_paths(name: str, root: Path) -> Paths:
    method = METHODS[name]
    return Paths(root, out=root / RUNS / name, own_prepared=method.own_prepared,
                 reference_dir=root / RUNS / method.reference_from / "models" / "adapter"
                 if method.reference_from else None)


def execute(name: str, root: Path, params_file: Path, steps: dict[str, Step]) -> dict:
    """Run `steps` (in order: prepare, effects, train, evaluate, those the kind has) for method `name`.

    A method that decodes another's adapter gets it copied first; `method.json` records what ran and how long.
    """
    method, params = METHODS[name], method_params(name, params_file)
    paths = method_paths(name, root)
    seconds: dict[str, float] = {}
    log.info("comparison: %s", comparison_progress(name, root, params_file))
    if method.adapter_from:
        shutil.copytree(root / RUNS / method.adapter_from / "models" / "adapter", paths.adapter, dirs_exist_ok=True)
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
    info = {"method": name, "label": method.label, "overrides": method_params_overrides(name, params),
            "seed": params.base.seed, "seconds": seconds}
    write_json(root / RUNS / name / "method.json", info)
    return info


def method_params_overrides(name: str, params: Params) -> dict[str, Any]:
    overrides = dict(METHODS[name].overrides)
    if METHODS[name].steered:
        overrides["eval.steering"] = params.eval.steering
    return overrides
