"""Where each stage reads and writes, relative to the project root; `dvc.yaml` names the same paths.

`out` redirects what a run writes (adapter, checkpoints, predictions, reports, and optionally its own
prepared data) to a folder of its own, so the comparison can train and evaluate every method side by
side with the same stage code; shared inputs (the base model, the default prepared data) stay at the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")
    out: Path | None = None  # a run's own output folder; None = the pipeline's default outputs
    own_prepared: bool = False  # the run prepares its own data (e.g. another history selection) under `out`
    reference_dir: Path | None = None  # θ_D from elsewhere (the comparison reuses its ContextSFT run)

    @property
    def _outputs(self) -> Path:
        return self.out if self.out is not None else self.root

    @property
    def base_model(self) -> Path:
        return self.root / "models" / "base"

    @property
    def synthetic_raw(self) -> Path:
        """The embedded benchmark, laid out like the Amazon Reviews 2023 raw files."""
        return self.root / "data" / "raw" / "synthetic"

    @property
    def prepared(self) -> Path:
        """Examples per split, rejects and protocol drops, written by `prepare`."""
        return (self._outputs if self.own_prepared else self.root) / "data" / "prepared"

    @property
    def effects(self) -> Path:
        """Per-token DCE and weights of the training set, written by `effects`."""
        return self._outputs / "data" / "effects"

    @property
    def reference(self) -> Path:
        """The reference model θ_D (a ContextSFT adapter), written by `reference`."""
        return self.reference_dir if self.reference_dir is not None else self.root / "models" / "reference"

    @property
    def adapter(self) -> Path:
        return self._outputs / "models" / "adapter"

    @property
    def checkpoints(self) -> Path:
        """Resumable training state; not a DVC output, so a failed run's checkpoints survive."""
        return self._outputs / "models" / "checkpoints"

    @property
    def eval_dir(self) -> Path:
        """Per-example predictions, scores and token effects, written by `evaluate`."""
        return self._outputs / "data" / "eval"

    @property
    def reports(self) -> Path:
        return self._outputs / "reports"

    @property
    def mlflow_db(self) -> Path:
        """The default MLflow tracking store (SQLite), always in the project root whatever the cwd."""
        return self.root.resolve() / "mlflow.db"

    def review_file(self, raw_dir: Path, category: str) -> Path:
        return raw_dir / "review_categories" / f"{category}.jsonl"

    def meta_file(self, raw_dir: Path, category: str) -> Path:
        return raw_dir / "meta_categories" / f"meta_{category}.jsonl"
