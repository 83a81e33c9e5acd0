"""Training rows of the prepared split: a seeded sample, with the precomputed token weights when there are any.

Apart from `training` so that the `effects` stage, which needs the rows but trains nothing, depends on this
file alone (and on none of the training parameters).
"""

from __future__ import annotations

import random
from pathlib import Path

COLUMNS = ["example_id", "prompt_ids_with", "prompt_ids_without", "target_ids"]


def load_examples(path: Path, max_examples: int | None, seed: int, weights: Path | None = None) -> list[dict]:
    """Training rows (a seeded sample when `max_examples` is set), with their precomputed weights and DCE (the
    `weights` and `dce` of `data/effects/train.parquet`) when `weights` names that table."""
    import pyarrow.parquet as pq

    rows = pq.read_table(path, columns=COLUMNS).to_pylist()
    if max_examples is not None and max_examples < len(rows):
        rows = random.Random(seed).sample(rows, max_examples)
    if weights is not None:
        table = pq.read_table(weights, columns=["example_id", "weights", "dce"]).to_pylist()
        by_id = {r["example_id"]: r for r in table}
        missing = [r["example_id"] for r in rows if r["example_id"] not in by_id]
        if missing:
            raise ValueError(f"{weights}: no weights for {len(missing)} training examples (e.g. {missing[0]}); "
                             "re-run `dvc repro effects`")
        for r in rows:
            r["weights"], r["dce"] = by_id[r["example_id"]]["weights"], by_id[r["example_id"]]["dce"]
    return rows
