"""Stage `effects`: the data-side causal effect (DCE) and token weights of the training set, computed once.

With `effects.estimator: base` the frozen base model, or with `reference` the ContextSFT adapter θ_D of
the `reference` stage, scores every training example with and without its history under no_grad, in
length-sorted batches (little padding), and writes `data/effects/train.parquet`: per example, the DCE
and the weight of each target token. Training then reads the weights instead of estimating them. With
`online` (the official code's choice) the weights come from the model in training, and this stage
writes an empty table.
"""

from __future__ import annotations

import sys

from nextquill.config import Params
from nextquill.io import atomic_dir, write_json
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main


def load_reference(base, paths: Paths):
    """θ_D: the reference adapter on the base weights (full fine-tuning saved a whole model instead)."""
    from peft import PeftModel

    if (paths.reference / "adapter_config.json").is_file():
        return PeftModel.from_pretrained(base, paths.reference)
    if (paths.reference / "config.json").is_file():
        from nextquill.model.loading import load_model

        return load_model(paths.reference)[0]
    raise FileNotFoundError(f"{paths.reference}: no reference model; run `dvc repro reference` with "
                            "effects.estimator: reference")


def run(params: Params, paths: Paths) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fx = params.effects
    columns = {"example_id": [], "dce": [], "weights": []}
    if fx.estimator != "online":
        from nextquill.model.estimate import estimate
        from nextquill.model.examples import load_examples
        from nextquill.model.loading import inference_device, load_model
        from nextquill.model.views import WeightSettings

        rows = load_examples(paths.prepared / "train.parquet", params.train.max_examples, params.training_seed)
        model, tokenizer = load_model(paths.base_model, params.model.dtype)
        if fx.estimator == "reference":
            model = load_reference(model, paths)
        settings = WeightSettings.from_effects(params.effects)
        model.to(inference_device())
        for i, effect, weights in estimate(model, rows, fx.batch_size, settings, tokenizer.pad_token_id):
            columns["example_id"].append(rows[i]["example_id"])
            columns["dce"].append(effect)
            columns["weights"].append(weights)
    schema = pa.schema([("example_id", pa.string()), ("dce", pa.list_(pa.float32())),
                        ("weights", pa.list_(pa.float32()))])
    with atomic_dir(paths.effects) as out:
        pq.write_table(pa.table(columns, schema=schema), out / "train.parquet")
    tokens = sum(len(w) for w in columns["weights"])
    # Preference-bearing = DCE above δ, read from the DCE itself (a float32 weight never equals the float λ).
    high = sum(sum(1 for x in d if x > fx.delta) for d in columns["dce"])
    summary = {"estimator": fx.estimator, "examples": len(columns["example_id"]), "tokens": tokens,
               "preference_token_fraction": round(high / tokens, 4) if tokens else None}
    write_json(paths.reports / "effects.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    return stage_main("effects", run, argv)


if __name__ == "__main__":
    sys.exit(main())
