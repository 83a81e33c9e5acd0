"""Where each stage reads and writes, relative to the project root; `dvc.yaml` names the same paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")

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
        return self.root / "data" / "prepared"

    @property
    def effects(self) -> Path:
        """Per-token DCE and weights of the training set, written by `effects`."""
        return self.root / "data" / "effects"

    @property
    def reference(self) -> Path:
        """The reference model θ_D (a ContextSFT adapter), written by `reference`."""
        return self.root / "models" / "reference"

    @property
    def adapter(self) -> Path:
        return self.root / "models" / "adapter"

    @property
    def checkpoints(self) -> Path:
        """Resumable training state; not a DVC output, so a failed run's checkpoints survive."""
        return self.root / "models" / "checkpoints"

    @property
    def eval_dir(self) -> Path:
        """Per-example predictions and scores, written by `evaluate`."""
        return self.root / "data" / "eval"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def review_file(self, raw_dir: Path, category: str) -> Path:
        return raw_dir / "review_categories" / f"{category}.jsonl"

    def meta_file(self, raw_dir: Path, category: str) -> Path:
        return raw_dir / "meta_categories" / f"meta_{category}.jsonl"
