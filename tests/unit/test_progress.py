"""Progress: a line every few percent with rate and ETA when not on a terminal, a live bar on one."""

from __future__ import annotations

import io
import logging

import pytest

from nextquill.progress import Progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_every_five_percent_with_rate_and_eta(caplog, monkeypatch):
    monkeypatch.delenv("NEXTQUILL_PROGRESS", raising=False)
    clock, stream = Clock(), io.StringIO()
    with caplog.at_level(logging.INFO, logger="nextquill.progress"):
        with Progress(200, "train", "steps", stream=stream, clock=clock) as progress:
            for _ in range(200):
                clock.now += 0.5  # 2 steps per second
                progress.update(1, loss=1.5)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 20  # 5%, 10%, ..., 95%, and the final line
    assert lines[0] == "train: 10/200 steps (5%), 2 steps/s, elapsed 5s, ETA 1m35s, loss 1.5"
    assert lines[-1] == "train: 200/200 steps (100%), 2 steps/s, elapsed 1m40s, loss 1.5"
    assert stream.getvalue() == "" and not any("\r" in line for line in lines)


def test_a_big_jump_logs_one_line_not_one_per_threshold(caplog, monkeypatch):
    monkeypatch.delenv("NEXTQUILL_PROGRESS", raising=False)
    with caplog.at_level(logging.INFO, logger="nextquill.progress"):
        progress = Progress(100, "decode", "examples", stream=io.StringIO(), clock=Clock())
        progress.update(37)
        progress.update(1)
        assert [r.getMessage().split(",")[0] for r in caplog.records] == ["decode: 37/100 examples (37%)"]
        progress.close()


@pytest.mark.parametrize(("env", "mode"), [(None, "bar"), ("lines", "lines"), ("off", "off")])
def test_a_terminal_gets_a_live_bar_unless_told_otherwise(monkeypatch, env, mode):
    if env is None:
        monkeypatch.delenv("NEXTQUILL_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("NEXTQUILL_PROGRESS", env)
    stream = Terminal()
    with Progress(4, "effects", "examples", stream=stream) as progress:
        assert progress.mode == mode
        progress.update(4)
    assert ("effects" in stream.getvalue() and "4/4" in stream.getvalue()) == (mode == "bar")
