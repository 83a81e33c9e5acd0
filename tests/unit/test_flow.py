"""The `nextquill` flow's logic through `task.fn(...)`: no Prefect engine, no server, no DVC run.

Run: .venv/bin/python -m pytest -q tests/unit/test_flow.py
"""

import difflib
import shutil
import sys
from pathlib import Path

import pytest
from dvc.exceptions import ReproductionError
from dvc.stage.exceptions import StageCmdFailedError
from prefect.states import Failed

from nextquill.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "flows"))
from nextquill_flow import (  # noqa: E402
    StageFailed,
    _lines,
    apply_overrides,
    is_transient_io,
    select_stages,
    validate_overrides,
)


@pytest.fixture
def root(tmp_path) -> str:
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return str(tmp_path)


def test_validate_overrides_rejects_an_unknown_key_naming_it(root):
    with pytest.raises(ConfigError, match=r"train\.max_stepz = 2: unknown key; did you mean 'max_steps'"):
        validate_overrides.fn(root, {"train.max_stepz": 2})


def test_validate_overrides_rejects_a_bad_value_naming_the_key(root):
    with pytest.raises(ConfigError, match=r"params\.yaml:\d+: eval\.max_examples = 0: .*greater than or equal to 1"):
        validate_overrides.fn(root, {"eval.max_examples": 0})


def test_validate_overrides_returns_validated_values(root):
    got = validate_overrides.fn(root, {"train.max_steps": "2", "synthesize.categories": ["Books"]})
    assert got == {"train.max_steps": 2, "synthesize.categories": ["Books"]}


def test_select_stages_keeps_dvc_yaml_order_and_names_the_allowed_ones(root):
    everything = select_stages.fn(root, None)
    assert everything[:2] == ["base_model", "synthesize"] and everything[-1] == "register"
    assert select_stages.fn(root, ["train", "synthesize"]) == ["synthesize", "train"]
    with pytest.raises(ValueError, match=r"unknown stages \['trian'\]; allowed stages, in order: base_model, "):
        select_stages.fn(root, ["trian"])


def test_apply_overrides_changes_only_the_overridden_lines(root):
    path = Path(root) / "params.yaml"
    before = path.read_text().splitlines(keepends=True)
    changed = apply_overrides.fn(root, {"train.max_steps": 2, "eval.max_examples": None, "model.dtype": "auto"})
    assert changed == ["train.max_steps", "eval.max_examples"]  # model.dtype is auto already
    after = path.read_text().splitlines(keepends=True)
    diff = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [new for _, new in diff] == [
        "  max_steps: 2\n",
        "  max_examples: null            # a seeded sample keeps CPU decoding to minutes; null = every test user\n",
    ]
    assert not list(Path(root).glob(".params.yaml*"))  # the temporary file was renamed into place


def test_apply_overrides_keeps_flow_lists_and_adds_missing_keys(root):
    path = Path(root) / "params.yaml"
    before = path.read_text().splitlines()
    apply_overrides.fn(root, {"synthesize.categories": ["Books"], "train.new_key": 1})
    diff = [line for line in difflib.unified_diff(before, path.read_text().splitlines(), n=0, lineterm="")
            if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert diff == ["-  categories: [Books, Movies_and_TV, CDs_and_Vinyl]", "+  categories: [Books]",
                    "+  new_key: 1"]


def test_apply_overrides_leaves_the_file_byte_identical_when_nothing_changes(root):
    path = Path(root) / "params.yaml"
    apply_overrides.fn(root, {"train.max_steps": 3})
    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert apply_overrides.fn(root, {"train.max_steps": 3, "base.seed": 42}) == []
    assert apply_overrides.fn(root, {}) == []
    assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime


def _cmd_failure() -> StageFailed:
    try:
        try:
            raise ReproductionError("failed to reproduce 'train'") from StageCmdFailedError("python -m x", 1)
        except ReproductionError as err:
            raise StageFailed("stage 'train' failed") from err
    except StageFailed as err:
        return err


@pytest.mark.parametrize(("exc", "retried"), [
    (OSError("disk hiccup"), True),
    (TimeoutError("slow mount"), True),
    (ConnectionError("reset"), True),
    (ValueError("bad data"), False),
    (_cmd_failure(), False),  # the stage's command exited non-zero: not transient, whatever it printed
])
def test_retry_condition_retries_only_transient_io(exc, retried):
    assert is_transient_io(None, None, Failed(data=exc)) is retried


def test_retry_condition_follows_the_cause_chain():
    try:
        raise ReproductionError("failed to reproduce 'train'") from OSError("No space left on device")
    except ReproductionError as err:
        assert is_transient_io(None, None, Failed(data=err)) is True


def test_lines_keep_what_a_terminal_shows():
    assert _lines(bytearray(b"step 1\r 50%\r100%\n\n\xffdone  \n")) == ["100%", "\ufffddone"]
