"""What produced a result: the source commit and a digest of the parameters, stored next to the result."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any


def source_commit(root: Path) -> str | None:
    """HEAD of the git checkout at `root`, with "+dirty" when the package or params.yaml has uncommitted edits.

    None outside a git checkout or before its first commit. Only the code and the parameters count as dirty:
    `dvc repro` rewrites dvc.lock and the tracked results while it runs.
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "nextquill", "params.yaml")
    return f"{head}+dirty" if dirty else head


def params_digest(values: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of a flat {dotted key: value} dict, independent of key order."""
    text = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
