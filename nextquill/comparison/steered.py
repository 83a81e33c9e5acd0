"""The Context Steering λ of the steered methods, for the entry modules of the kinds that have them.

Its own module: only `zero_shot` and `derived` import it, so only their DVC stages depend on compare.steering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nextquill.comparison.methods import METHODS
from nextquill.config import load_params


def steering_overrides(name: str, params_file: Path) -> dict[str, Any]:
    """`{"eval.steering": compare.steering}` for a steered method, else nothing."""
    if not METHODS[name].steered:
        return {}
    params = load_params(params_file)
    return {"eval.steering": params.compare.steering}
