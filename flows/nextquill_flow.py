"""The `nextquill` Prefect flow: validate overrides, write them into params.yaml, then `dvc repro` stage by stage.

Each stage task is `dvc repro --single-item <stage>` through DVC's Python API: the same stage code as `dvc repro`,
`dvc.lock` stays the record of what was built, and a `dvc repro` after a flow run is a no-op. Overrides are dotted
params.yaml keys, checked by `load_params` before any work and written as `dvc exp run -S` writes them. Prefect's
task cache is off: DVC decides what is stale. How to run it: flows/README.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging.handlers import APILogHandler
from prefect.runtime import deployment, flow_run

from nextquill.config import flatten, load_params

DEFAULT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_CAP = 500_000  # bytes of a stage's output kept for the run log (Prefect drops log records over 1 MB)
TAIL_LINES = 15  # lines of a failed stage's stderr quoted in the error


class StageFailed(RuntimeError):
    """A DVC stage failed; the message names the stage and quotes the end of its stderr."""


@task(cache_policy=NO_CACHE)
def select_stages(root: str, stages: list[str] | None) -> list[str]:
    """The stages to run in dvc.yaml order (all by default); unknown names fail, naming the allowed ones."""
    import yaml

    allowed = list(yaml.safe_load((Path(root) / "dvc.yaml").read_text(encoding="utf-8"))["stages"])
    unknown = [s for s in stages or [] if s not in allowed]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; allowed stages, in order: {', '.join(allowed)}")
    return [s for s in allowed if stages is None or s in stages]


@task(cache_policy=NO_CACHE)
def validate_overrides(root: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Validate all of params.yaml with `overrides` applied; return the overrides as validated (`"2"` -> 2).

    Raises:
        ConfigError: an unknown key or a bad value, named in the message.
    """
    params = load_params(Path(root) / "params.yaml", overrides)
    flat = flatten(params)
    return {key: flat.get(key, value) for key, value in overrides.items()}


@task(cache_policy=NO_CACHE)
def apply_overrides(root: str, overrides: dict[str, Any]) -> list[str]:
    """Write `overrides` into params.yaml as `dvc exp run -S` does (ruamel.yaml round trip: comments and order
    kept), atomically and only if a value changes; return the keys whose value changed."""
    import io

    from ruamel.yaml import YAML, RoundTripRepresenter
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    class Representer(RoundTripRepresenter):  # a subclass: add_representer on ruamel's own class is global
        pass

    Representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))

    path = Path(root) / "params.yaml"
    yml = YAML()
    yml.Representer, yml.preserve_quotes = Representer, True
    yml.width = 4096  # never re-wrap a line; `_patch` restores the file's own wrapping
    original = path.read_text(encoding="utf-8")
    doc, changed = yml.load(original), []
    before = io.StringIO()
    yml.dump(doc, before)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, CommentedMap())
        old = node.get(leaf)
        if leaf not in node or old != value:
            if isinstance(old, CommentedSeq) and isinstance(value, list) and old.fa.flow_style():
                value = CommentedSeq(value)  # keep `[a, b]` on one line, as it was
                value.fa.set_flow_style()
            node[leaf] = value
            changed.append(key)
    if changed:
        after = io.StringIO()
        yml.dump(doc, after)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(_patch(original, before.getvalue(), after.getvalue()), encoding="utf-8")
        os.replace(tmp, path)
        print(f"params.yaml: set {', '.join(f'{k}={overrides[k]!r}' for k in changed)}")
    return changed


def _patch(original: str, before: str, after: str) -> str:
    """Apply the edit `before` -> `after` to `original`, where `before` is ruamel's rendering of `original`.

    ruamel re-renders a few constructs (a flow list wrapped over two lines); patching only the hunks that the
    overrides changed keeps every other line as written. An edit inside a re-rendered region takes `after` whole.
    """
    from difflib import SequenceMatcher

    orig, old, new = (s.splitlines(keepends=True) for s in (original, before, after))
    to_orig: dict[int, int] = {len(old): len(orig)}
    for tag, i1, i2, j1, _ in SequenceMatcher(None, old, orig, autojunk=False).get_opcodes():
        if tag == "equal":
            to_orig.update(zip(range(i1, i2), range(j1, j1 + i2 - i1), strict=True))
    out, pos = [], 0
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        lines = [to_orig.get(i) for i in range(i1, max(i2, i1 + 1))]
        if None in lines or lines != list(range(lines[0], lines[0] + len(lines))):
            return after
        start = lines[0]
        out += orig[pos:start] + new[j1:j2]
        pos = start + (i2 - i1)
    return "".join(out + orig[pos:])


def is_transient_io(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry condition: an OSError (TimeoutError, ConnectionError) in the cause chain, but never a stage's own
    failure (its command exited non-zero, whatever it printed)."""
    from dvc.stage.exceptions import StageCmdFailedError

    exc = state.result(raise_on_failure=False)
    while isinstance(exc, BaseException):
        if isinstance(exc, StageCmdFailedError):
            return False
        if isinstance(exc, OSError):
            return True
        exc = exc.__cause__
    return False


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=is_transient_io, cache_policy=NO_CACHE)
def dvc_repro(root: str, stage: str) -> list[str]:
    """`dvc repro --single-item <stage>`: run the stage if DVC finds it stale; return the stages run."""
    from dvc.exceptions import ReproductionError
    from dvc.repo import Repo

    captured = {"all": bytearray(), "err": bytearray()}
    try:  # DVC's API needs the repo root as working directory: elsewhere it fails to find outputs it just made
        with _tee_output(captured), contextlib.chdir(root), Repo(root) as repo:
            done = [s.addressing for s in repo.reproduce(stage, single_item=True)]
    except ReproductionError as err:
        cause = err.__cause__ or err
        tail = "\n".join(_lines(captured["err"])[-TAIL_LINES:])
        tail = f"\n--- end of its stderr ---\n{tail}" if tail else ""
        raise StageFailed(f"stage {stage!r} failed: {str(cause) or repr(cause)}{tail}") from err
    finally:
        if text := "\n".join(_lines(captured["all"])):
            _api_only_logger().info("dvc repro %s:\n%s", stage, text)
    print(f"{stage}: ran {', '.join(done)}" if done else f"{stage}: up to date")
    return done


@flow(name="nextquill", log_prints=True)
def nextquill(
    overrides: dict[str, Any] | None = None, stages: list[str] | None = None, root: str | None = None
) -> dict[str, Any]:
    """Run the NextQuill pipeline through DVC, stage by stage.

    Args:
        overrides (dict): dotted params.yaml keys to set first, e.g. `{"train.max_steps": 2}`. Default none.
        stages (list[str]): stages to run, in dvc.yaml order whatever the order given. Default all.
        root (str): project root. Default `$NQ_ROOT`, else the folder above `flows/`.
    """
    project = str(Path(root or os.environ.get("NQ_ROOT") or DEFAULT_ROOT).resolve())
    overrides = overrides or {}
    selected = select_stages(project, stages)
    values = validate_overrides(project, overrides)
    changed = apply_overrides(project, values)
    ran: list[str] = []
    with _stage_environment(values):
        for stage in selected:
            ran += dvc_repro.with_options(name=stage)(project, stage)
    promotion = Path(project) / "reports" / "promotion.json"
    promoted = json.loads(promotion.read_text(encoding="utf-8")) if promotion.is_file() else None
    return {"stages_run": ran, "overrides": values, "params_changed": changed, "promotion": promoted}


@contextlib.contextmanager
def _stage_environment(overrides: dict[str, Any]) -> Iterator[None]:
    """Tell stages who runs them (register logs NEXTQUILL_RUN_TAGS as MLflow tags) and put this venv on PATH."""
    tags = {
        "prefect.flow_run_id": flow_run.id,
        "prefect.deployment": deployment.name,
        "prefect.overrides": json.dumps(overrides, sort_keys=True),
    }
    env = {
        "NEXTQUILL_ORCHESTRATOR": "prefect",
        "NEXTQUILL_RUN_TAGS": json.dumps(tags),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    saved = {key: os.environ[key] for key in env if key in os.environ}
    os.environ.update(env)
    try:
        yield
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


def _api_only_logger() -> logging.Logger:
    """A logger that reaches the Prefect run log but not the console, which has shown the output live."""
    logger = logging.getLogger("nextquill.flow.stage_output")
    if not logger.handlers:
        logger.addHandler(APILogHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


@contextlib.contextmanager
def _tee_output(captured: dict[str, bytearray]) -> Iterator[None]:
    """Route file descriptors 1 and 2 through pipes while DVC runs a stage, and DVC's log lines with them.

    The stage command is a subprocess that inherits the descriptors, so this is the one place to see what it
    prints: each byte still reaches the console as it comes, and the last OUTPUT_CAP bytes are kept in
    `captured["all"]` (both, in order) and `captured["err"]` (stderr).
    """
    lock, pumps = threading.Lock(), []
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    for fd, bufs in ((1, ["all"]), (2, ["all", "err"])):
        read, write = os.pipe()
        os.dup2(write, fd)
        os.close(write)
        args = (read, saved[fd], [captured[b] for b in bufs], lock)
        pumps.append(threading.Thread(target=_pump, args=args, daemon=True))
        pumps[-1].start()
    dvc_log = logging.getLogger("dvc")  # its console handlers hold the sys.stdout of import time
    dvc_setup = dvc_log.handlers, dvc_log.propagate
    dvc_out = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    dvc_log.handlers, dvc_log.propagate = [logging.StreamHandler(dvc_out)], False  # no second copy via root
    try:
        yield
    finally:
        dvc_log.handlers, dvc_log.propagate = dvc_setup
        for stream in (dvc_out, sys.stdout, sys.stderr):
            stream.flush()
        for fd in (1, 2):
            os.dup2(saved[fd], fd)  # drops the last write end this process holds: the pump reads EOF
        for pump in pumps:
            pump.join(timeout=5)  # a process the stage left behind may hold the pipe open
        for fd in saved.values():
            os.close(fd)


def _pump(read: int, echo: int, bufs: list[bytearray], lock: threading.Lock) -> None:
    while chunk := os.read(read, 65536):
        with contextlib.suppress(OSError):  # the console went away: keep collecting
            os.write(echo, chunk)
        with lock:
            for buf in bufs:
                buf += chunk
                del buf[:-OUTPUT_CAP]
    os.close(read)


def _lines(buf: bytearray) -> list[str]:
    """Non-empty lines as a terminal shows them: a progress bar's `\\r` updates keep only the last."""
    lines = (line.rsplit("\r", 1)[-1].rstrip() for line in buf.decode("utf-8", "replace").split("\n"))
    return [line for line in lines if line]
