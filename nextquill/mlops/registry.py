"""The MLflow model registry: register the adapter once per content digest, and the promotion gate.

`register_model` logs `nextquill/mlops/serving.py` as a pyfunc "models from code" model (adapter, serving
config, and this package's code as artifacts; docs/setup.md explains why not `mlflow.transformers`). The base
model is stored once per content digest, as the artifacts of a run tagged `nextquill.base_sha256`, and each
version's serving config points at it (`base_uri`), so a version costs its adapter, not another base copy.
It registers the model with its tags set in the same transaction as the version, and points alias `challenger`
at it. `promote` moves alias `champion` when the challenger beats it on the same test split.
Aliases and tags only; legacy stages are never used.

Concurrency guarantees:
- Processes on one machine that share a tracking URI serialise the lookup, create, alias and gate steps on an
  `flock` file lock (the slow model logging happens outside it), so one adapter digest yields one version and
  alias moves follow version order.
- Across machines (no shared lock), the digest tag is written atomically with the version, so the later of two
  racing versions always sees the earlier one and deletes itself: still one version per digest. The gate is
  then last-writer-wins; aliases are only ever set on READY versions.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from nextquill.config import PromoteConfig, RegistryConfig
from nextquill.paths import Paths

log = logging.getLogger(__name__)
PYFUNC_FILE = Path(__file__).resolve().parent / "serving.py"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole nextquill package travels with the model
PINNED = ("torch", "transformers", "peft", "accelerate", "mlflow")
SAMPLE_BYTES = 1 << 20  # bytes of safetensors data hashed at each end of a base weight file
METRICS = ("n", "rouge1", "rougeL", "meteor", "bleu")


def _feed_file(digest, path: Path) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def _base_identity(digest, base: Path) -> None:
    """config.json, nextquill_source.json, and per safetensors file its size, header and 1 MiB at each end."""
    for name in ("config.json", "nextquill_source.json"):
        if (base / name).is_file():
            digest.update(name.encode() + b"\0" + (base / name).read_bytes())
    for path in sorted(base.glob("*.safetensors")):
        size = path.stat().st_size
        with path.open("rb") as handle:
            header_len = struct.unpack("<Q", handle.read(8))[0]
            digest.update(f"{path.name}\0{size}\0".encode() + handle.read(header_len + SAMPLE_BYTES))
            handle.seek(max(size - SAMPLE_BYTES, 0))
            digest.update(handle.read())


def adapter_digest(folder: str | Path, base_model: str | Path | None = None) -> str:
    """sha256 of every file of `folder` (sorted relative names and bytes) and, cheaply, of the base model."""
    folder, digest = Path(folder), hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(b"file\0" + path.relative_to(folder).as_posix().encode() + b"\0")
        _feed_file(digest, path)
    if base_model is not None:
        digest.update(b"base\0")
        _base_identity(digest, Path(base_model))
    return digest.hexdigest()


def pip_requirements() -> list[str]:
    return [f"{name}=={installed_version(name)}" for name in PINNED]


@contextmanager
def registry_lock(name: str) -> Iterator[None]:
    """An exclusive lock per (registry URI, model name) for processes on this machine."""
    import mlflow

    key = hashlib.sha256(f"{mlflow.get_registry_uri()}\0{name}".encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"nextquill-registry-{key}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


BASE_TAG = "nextquill.base_sha256"


def base_experiment(client, experiment_id: str) -> str:
    """The experiment `<name> base models` next to the pipeline's, which holds the stored base models (so the
    pipeline's experiment lists pipeline runs only); its artifacts sit under the pipeline experiment's."""
    from mlflow.exceptions import MlflowException

    parent = client.get_experiment(experiment_id)
    name = f"{parent.name} base models"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=f"{parent.artifact_location.rstrip('/')}/base-models")
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


def stored_base(client, experiment_id: str, base: Path) -> str:
    """`runs:/<id>/base`: the base model stored once per content digest, logged the first time (in the
    `base models` experiment next to `experiment_id`).

    A version's served model downloads it from there at load time (a plain path on a local artifact store: no
    copy), so registering a new adapter on the same base stores only the adapter.
    """
    digest = adapter_digest(base)  # every file's bytes: two bases share a store only when they are the same
    experiment_id = base_experiment(client, experiment_id)

    def find() -> str | None:
        query = f"tags.`{BASE_TAG}` = '{digest}' and attributes.status = 'FINISHED'"
        runs = client.search_runs([experiment_id], query, max_results=1)
        return runs[0].info.run_id if runs else None

    run_id = find()
    if run_id is None:
        with registry_lock(f"base-{digest}"):
            run_id = find()  # or stored meanwhile by another process
            if run_id is None:
                run = client.create_run(experiment_id, tags={BASE_TAG: digest,
                                                             "mlflow.runName": f"base-model-{digest[:12]}"})
                run_id = run.info.run_id
                start = time.perf_counter()
                client.log_artifacts(run_id, str(base), "base")
                client.set_terminated(run_id)
                log.info("stored the base model once (sha256 %s…) in run %s in %.1f s", digest[:12], run_id,
                         time.perf_counter() - start)
    return f"runs:/{run_id}/base"


def version_metrics(metrics_file: Path) -> dict[str, str]:
    """`test_<metric>` and `split` tags from reports/metrics.json (floats as repr, so they round-trip exactly)."""
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    overall = metrics.get("overall", {})
    tags = {f"test_{k}": repr(overall[k]) for k in METRICS if isinstance(overall.get(k), int | float)}
    return {**tags, "split": str(metrics.get("split", "test"))}


def find_version(client, name: str, digest: str):
    """The oldest READY version of `name` tagged with this adapter digest, or None."""
    found = client.search_model_versions(f"name='{name}' and tags.adapter_sha256='{digest}'")
    ready = [v for v in found if v.status == "READY"]
    return min(ready, key=lambda v: int(v.version)) if ready else None


def _serving_model(config: dict[str, Any], paths: Paths, run_id: str) -> str:
    """Log the pyfunc model in run `run_id` with its serving `config`; returns its `models:/m-...` URI."""
    import mlflow
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    # No input schema: MLflow would drop unknown fields silently (a request of only unknown fields would get
    # `[]`); the model checks every row itself and names the field (nextquill.mlops.requests).
    signature = ModelSignature(inputs=None, outputs=Schema([ColSpec("string")]),
                               params=ParamSchema([ParamSpec("max_new_tokens", "long", config["max_new_tokens"])]))
    example = pd.DataFrame([{"history": ["Loved the pacing; the ending hit hard."], "item_title": "The Quiet Orbit",
                             "item_description": "A slow-burn novel about a lighthouse keeper.", "rating": 5.0,
                             "review_title": "Worth it"}])
    base_uri = stored_base(mlflow.MlflowClient(), mlflow.MlflowClient().get_run(run_id).info.experiment_id,
                           paths.base_model)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
        (Path(tmp) / "serving.json").write_text(json.dumps(config | {"base_uri": base_uri}, indent=2))
        # The example's max_new_tokens=1 keeps MLflow's load-and-predict check of the example cheap; the
        # signature's default (registry.max_new_tokens) is what callers get.
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(PYFUNC_FILE), code_paths=[str(PACKAGE_DIR)],
            artifacts={"adapter": str(paths.adapter.resolve()), "config": str(Path(tmp) / "serving.json")},
            pip_requirements=pip_requirements(), signature=signature, input_example=(example, {"max_new_tokens": 1}),
        )
    return info.model_uri


def _create_version(client, name: str, model_uri: str, digest: str, tags: dict[str, str]) -> tuple[str, bool]:
    """Register `model_uri` with its tags in one transaction; a racing older twin wins and ours is deleted."""
    import mlflow

    created = mlflow.register_model(model_uri, name, tags={**tags, "adapter_sha256": digest})
    version = client.get_model_version(name, created.version)
    if version.status != "READY":
        raise RuntimeError(f"model version {name}/{version.version} is {version.status}: {version.status_message}")
    oldest = find_version(client, name, digest)
    if oldest is not None and int(oldest.version) < int(version.version):  # lost a race with another machine
        client.delete_model_version(name, str(version.version))
        return str(oldest.version), False
    return str(version.version), True


def _set_challenger(client, name: str, version: str) -> None:
    """Alias challenger follows the newest version: never moved back to an older one."""
    current = client.get_registered_model(name).aliases.get("challenger")
    if current is None or int(current) <= int(version):
        client.set_registered_model_alias(name, "challenger", version)


def register_model(registry: RegistryConfig, serving: dict[str, Any], paths: Paths, run_id: str) -> tuple[str, bool]:
    """Register the adapter unless a version with its digest exists; returns (version, created).

    `serving` is the served model's config (`nextquill.mlops.requests.serving_config`).

    The model is logged (the slow part: it copies the base model) only when no version has the digest; a reused
    version still gets alias challenger if it is the newest, which repairs a run that died before setting it.
    """
    import mlflow

    client, name = mlflow.MlflowClient(), registry.model_name
    digest = adapter_digest(paths.adapter, paths.base_model)
    existing, model_uri = find_version(client, name, digest), None
    if existing is None:
        start = time.perf_counter()
        model_uri = _serving_model(serving, paths, run_id)
        log.info("logged the pyfunc model %s in %.1f s", model_uri, time.perf_counter() - start)
    commit = client.get_run(run_id).data.tags.get("git_commit", "unknown")
    tags = {**version_metrics(paths.reports / "metrics.json"), "git_commit": commit, "run_id": run_id}
    with registry_lock(name):
        existing = existing or find_version(client, name, digest)  # or registered meanwhile by another process
        if existing is not None:
            version, created = str(existing.version), False
            log.info("adapter %s… is already %s version %s; not registering again", digest[:12], name, version)
        else:
            version, created = _create_version(client, name, model_uri, digest, tags)
            log.info("registered %s version %s (adapter %s…)", name, version, digest[:12])
        _set_challenger(client, name, version)
    return version, created


def _champion(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None


def _decide(gate: PromoteConfig, champion, version: str, metrics: dict[str, Any]) -> tuple[bool, str, float | None]:
    """(promote, reason, champion score) for the challenger's `metrics` (tags of `version_metrics`)."""
    key, min_delta = f"test_{gate.metric}", gate.min_delta
    if champion is None:
        return True, "first version", None
    if str(champion.version) == str(version):
        return False, "already champion", float(champion.tags[key]) if key in champion.tags else None
    tags = champion.tags
    same_n = key in tags and "test_n" in tags and float(tags["test_n"]) == float(metrics.get("test_n", "nan"))
    if tags.get("split") != metrics.get("split") or not same_n:
        return False, "different test split", float(tags[key]) if key in tags else None
    champion_score, score = float(tags[key]), float(metrics[key])
    if score - champion_score >= min_delta:
        return True, f"{key} {score:.6g} - champion {champion_score:.6g} >= min_delta {min_delta:g}", champion_score
    return False, f"{key} {score:.6g} - champion {champion_score:.6g} < min_delta {min_delta:g}", champion_score


def promote(gate: PromoteConfig, client, name: str, version: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The gate: move alias `champion` to `version` when its `promote.metric` beats the champion's.

    `metrics` holds the challenger's `test_<metric>`, `test_n` and `split` (as `version_metrics` gives them).
    The champion moves when `challenger - champion >= promote.min_delta` on the same split and test size, and
    the challenger is not the champion already; with min_delta 0 a tie promotes the newer version, so set
    min_delta > 0 to require a strict improvement. A first version always becomes champion.
    """
    key = f"test_{gate.metric}"
    with registry_lock(name):
        champion = _champion(client, name)
        promoted, reason, champion_score = _decide(gate, champion, version, metrics)
        if promoted:
            client.set_registered_model_alias(name, "champion", str(version))
        decision = "promoted" if promoted else "kept" if reason == "already champion" else "rejected"
        score = float(metrics[key])
        for tag, value in (("promotion_decision", decision), ("promotion_reason", reason),
                           ("challenger_score", repr(score)), ("champion_score", repr(champion_score))):
            client.set_model_version_tag(name, str(version), tag, value)
    return {"decision": decision, "promoted": promoted, "reason": reason, "metric": gate.metric,
            "min_delta": gate.min_delta, "version": str(version), "challenger_score": score,
            "champion_score": champion_score, "previous_champion": str(champion.version) if champion else None,
            "champion": str(version) if promoted else (str(champion.version) if champion else None)}
