"""Stage `register`: log the pipeline run to MLflow, register the adapter, and run the promotion gate.

Writes `reports/promotion.json` (DVC metrics): the gate's decision and reason, both scores, the metric, the
version, the run id and the model URI. An identical adapter (same digest) is not registered twice; the gate
then runs again on the existing version. An unreachable tracking server fails the stage within seconds,
before anything is logged or registered.
"""

from __future__ import annotations

import logging
import sys

from nextquill.config import Params
from nextquill.io import write_json
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths, tags: dict[str, str] | None = None) -> dict:
    """Log, register and gate; `tags` (e.g. an orchestrator's run id) go on the MLflow run."""
    import mlflow

    from nextquill.mlops.registry import promote, register_model
    from nextquill.mlops.requests import serving_config
    from nextquill.mlops.tracking import configure, log_pipeline_run

    configure(params.tracking, paths)  # raises TrackingUnavailable first when a server does not answer
    name = params.registry.model_name
    run_id = log_pipeline_run(params, paths, tags)
    version, created = register_model(params.registry, serving_config(params), paths, run_id)
    client = mlflow.MlflowClient()
    # The version's own tags, so a re-registered adapter is gated on the metrics it was registered with.
    decision = promote(params.promote, client, name, version, client.get_model_version(name, version).tags)
    result = {**decision, "created": created, "run_id": run_id, "model_name": name,
              "model_uri": f"models:/{name}/{version}"}
    write_json(paths.reports / "promotion.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    from nextquill.mlops.tracking import TrackingUnavailable

    try:
        return stage_main("register", run, argv)
    except TrackingUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
