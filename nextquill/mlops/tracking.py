"""MLflow tracking: where runs go, and the one run that records a whole pipeline run.

`tracking_uri` never depends on the cwd (docs/setup.md): `tracking.uri`, else $MLFLOW_TRACKING_URI, else the
SQLite file in the project root. `configure` sets it for tracking and the registry and, for an `http(s)://`
server, checks `<uri>/health` within seconds first, so a down server fails the stage before anything is written.
`log_pipeline_run` logs params, test/data/train metrics, the training curve, the reports and provenance tags
into one run. Nothing here runs at import time; the model itself is logged by `nextquill.mlops.registry`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nextquill.config import Params, TrackingConfig, flatten
from nextquill.paths import Paths

log = logging.getLogger(__name__)
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
MAX_TAG_CHARS = 8000  # and on a tag value
REPORT_FILES = ("token_effects.html",)
NUMERIC_REPORTS = {"data_stats.json": "data.", "train_metrics.json": "train.", "effects.json": "effects."}


class TrackingUnavailable(RuntimeError):
    """The tracking server does not answer; nothing was logged or registered."""


def tracking_uri(cfg: TrackingConfig, paths: Paths) -> str:
    """`cfg.uri`, else $MLFLOW_TRACKING_URI, else `sqlite:///<absolute root>/mlflow.db`.

    A relative SQLite path in `cfg.uri` (`sqlite:///x.db`) is taken relative to the project root, like every
    other path in params.yaml.
    """
    if cfg.uri and cfg.uri.startswith("sqlite:///") and not cfg.uri.startswith("sqlite:////"):
        return f"sqlite:///{(paths.root / cfg.uri.removeprefix('sqlite:///')).resolve()}"
    return cfg.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.mlflow_db}"


def check_reachable(uri: str, timeout: float = 3.0) -> None:
    """For an http(s) URI, GET `<uri>/health` with a short timeout; raise `TrackingUnavailable` if it fails."""
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only, checked above)
            if response.status != 200:
                raise TrackingUnavailable(f"MLflow tracking server {uri}: GET {url} returned {response.status}")
    except (urllib.error.URLError, OSError) as err:
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} is unreachable (GET {url}: {err}); start it, or set tracking.uri "
            "(null = $MLFLOW_TRACKING_URI, else the project's mlflow.db)"
        ) from None


def configure(cfg: TrackingConfig, paths: Paths) -> str:
    """Check the server, make HTTP calls fail fast, and point MLflow tracking and registry at one URI."""
    import mlflow

    uri = tracking_uri(cfg, paths)
    check_reachable(uri)
    if uri.startswith(("http://", "https://")):
        # The default is 7 retries with backoff (minutes); a server that was up a second ago rarely needs them.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(client, name: str, artifact_location: str | Path) -> str:
    """The id of experiment `name`, created with an absolute `file://` artifact location when missing."""
    from mlflow.exceptions import MlflowException

    location = artifact_location if isinstance(artifact_location, str) else Path(artifact_location).resolve().as_uri()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException:  # created meanwhile by a concurrent run
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def env_run_tags() -> dict[str, str]:
    """Tags an orchestrator passes to stage subprocesses as a JSON object in $NEXTQUILL_RUN_TAGS."""
    raw = os.environ.get("NEXTQUILL_RUN_TAGS")
    try:
        tags = json.loads(raw) if raw else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"NEXTQUILL_RUN_TAGS is not JSON ({err}): {raw[:200]!r}") from None
    if not isinstance(tags, dict):
        raise ValueError(f"NEXTQUILL_RUN_TAGS must be a JSON object, got {type(tags).__name__}")
    return tags


def provenance_tags(paths: Paths, extra: dict[str, str] | None = None) -> dict[str, str]:
    """git commit and dirtiness, the sha256 of dvc.lock, the orchestrator, then $NEXTQUILL_RUN_TAGS and `extra`."""
    root = paths.root.resolve()
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if commit else None
    tags = {"git_commit": commit or "unknown", "git_dirty": "unknown" if status is None else str(bool(status)).lower(),
            "nextquill.pipeline": os.environ.get("NEXTQUILL_ORCHESTRATOR", "dvc")}
    lock = root / "dvc.lock"
    if lock.is_file():
        tags["dvc_lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    tags.update(env_run_tags())
    tags.update(extra or {})
    return {k: str(v)[:MAX_TAG_CHARS] for k, v in tags.items()}


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text[:MAX_PARAM_CHARS]


def numeric_leaves(obj: Any, prefix: str = "") -> dict[str, float]:
    """`{"a.b": 1.0}` for every int/float leaf of nested dicts; bools, strings, None and lists are skipped."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.update(numeric_leaves(value, f"{prefix}{key}."))
    elif isinstance(obj, int | float) and not isinstance(obj, bool) and obj == obj:
        out[prefix.rstrip(".")] = float(obj)
    return out


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def summary_metrics(reports: Path) -> dict[str, float]:
    """Test metrics (`test_rouge1`, `test_Books_rouge1`, ...) and the numeric leaves of the other reports."""
    out: dict[str, float] = {}
    metrics = _read_json(reports / "metrics.json")
    if metrics:
        split = metrics.get("split", "test")
        out.update({f"{split}_{k}": v for k, v in numeric_leaves(metrics.get("overall", {})).items()})
        for category, values in (metrics.get("by_category") or {}).items():
            out.update({f"{split}_{category}_{k}": v for k, v in numeric_leaves(values).items()})
    for name, prefix in NUMERIC_REPORTS.items():
        out.update({prefix + k: v for k, v in numeric_leaves(_read_json(reports / name) or {}).items()})
    return out


def training_curve(csv_file: Path) -> list[tuple[str, float, int]]:
    """`(train/<column>, value, step)` for every numeric cell of train_log.csv."""
    if not csv_file.is_file():
        return []
    points = []
    with csv_file.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.pop("step")))
            for column, cell in row.items():
                try:
                    value = float(cell)
                except (TypeError, ValueError):
                    continue
                if value == value:
                    points.append((f"train/{column}", value, step))
    return points


def _log_values(client, run_id: str, params: Params, paths: Paths) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    flat = [Param(k, _param_value(v)) for k, v in sorted(flatten(params).items())]
    metrics = [Metric(k, v, now, 0) for k, v in sorted(summary_metrics(paths.reports).items())]
    metrics += [Metric(k, v, now, step) for k, v, step in training_curve(paths.reports / "plots" / "train_log.csv")]
    for i in range(0, len(flat), 100):  # MLflow's batch limits: 100 params, 1000 metrics per request
        client.log_batch(run_id, params=flat[i:i + 100])
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def _log_reports(client, run_id: str, paths: Paths) -> None:
    reports = paths.reports
    for path in sorted(reports.glob("*.json")) + [reports / name for name in REPORT_FILES]:
        if path.is_file():
            client.log_artifact(run_id, str(path), artifact_path="reports")
    if (reports / "plots").is_dir():
        client.log_artifacts(run_id, str(reports / "plots"), artifact_path="reports/plots")
    predictions = paths.eval_dir / "predictions.jsonl"
    if predictions.is_file():
        client.log_artifact(run_id, str(predictions), artifact_path="eval")


def log_pipeline_run(params: Params, paths: Paths, tags: dict[str, str] | None = None) -> str:
    """Log one pipeline run (params, metrics, training curve, reports, provenance tags); returns its run id.

    MLflow must already point at the tracking store (`configure`). `tags` (e.g. Prefect's flow run id)
    override the provenance tags of the same name.
    """
    import mlflow

    client = mlflow.MlflowClient()
    location = (paths.root / params.tracking.artifact_dir).resolve()
    experiment_id = ensure_experiment(client, params.tracking.experiment, location)
    run = client.create_run(experiment_id, tags=provenance_tags(paths, tags),
                            run_name=f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}")
    run_id = run.info.run_id
    try:
        _log_values(client, run_id, params, paths)
        _log_reports(client, run_id, paths)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    log.info("logged pipeline run %s to experiment %s", run_id, params.tracking.experiment)
    return run_id
