"""Progress of the long steps (training, effect estimation, decoding, the comparison), with rate and ETA.

On a terminal it draws a live bar (tqdm) on stderr; anywhere else (a log file, DVC's captured output, CI)
it logs one line every `every` percent and one at the end, never a stream of carriage returns:

    2026-12-02 06:10:01 train INFO train: 24/96 steps (25%), 0.41 steps/s, ETA 2m55s, loss 3.21

`NEXTQUILL_PROGRESS=bar|lines|off` overrides the choice (e.g. `lines` under a terminal multiplexer log).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import IO

log = logging.getLogger("nextquill.progress")


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _mode(stream: IO[str]) -> str:
    chosen = os.environ.get("NEXTQUILL_PROGRESS", "").strip().lower()
    if chosen in ("bar", "lines", "off"):
        return chosen
    return "bar" if getattr(stream, "isatty", lambda: False)() else "lines"


class Progress:
    """`total` units of work named `desc`; call `update(n, **shown)` as they finish, `close()` at the end.

    Args:
        total: units of work (steps, examples, methods); 0 or less shows counts without percent or ETA.
        desc: what is being done ("train", "decode", "effects").
        unit: the unit's plural name ("steps", "examples").
        every: with line output, percent of `total` between two lines.
    """

    def __init__(self, total: int, desc: str, unit: str = "items", every: float = 5.0,
                 stream: IO[str] | None = None, clock=time.monotonic):
        self.total, self.desc, self.unit, self.every = int(total), desc, unit, every
        self.stream = stream if stream is not None else sys.stderr
        self.clock, self.start, self.done, self.shown = clock, clock(), 0, {}
        self.mode = _mode(self.stream)
        self.next_line = every
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total or None, desc=desc, unit=f" {unit}", file=self.stream, leave=True,
                            dynamic_ncols=True)

    def update(self, n: int = 1, **shown) -> None:
        self.done += n
        self.shown.update(shown)
        if self.bar is not None:
            self.bar.update(n)
            if shown:
                self.bar.set_postfix({k: _fmt(v) for k, v in shown.items()}, refresh=False)
        elif self.mode == "lines" and self.total > 0:
            percent = 100.0 * self.done / self.total
            if percent >= self.next_line and self.done < self.total:
                log.info(self.line())
                self.next_line = (math.floor(percent / self.every) + 1) * self.every

    def show(self, **shown) -> None:
        """Values shown with the next update (e.g. the loss of the last logged step)."""
        self.shown.update(shown)
        if self.bar is not None:
            self.bar.set_postfix({k: _fmt(v) for k, v in self.shown.items()}, refresh=False)

    def line(self) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.done / elapsed
        head = f"{self.desc}: {self.done}/{self.total} {self.unit}" if self.total > 0 else \
            f"{self.desc}: {self.done} {self.unit}"
        if self.total > 0:
            head += f" ({100.0 * self.done / self.total:.0f}%)"
        eta = (self.total - self.done) / rate if rate > 0 and self.total > 0 else math.inf
        parts = [head, f"{rate:.3g} {self.unit}/s", f"elapsed {_duration(elapsed)}"]
        if self.done < self.total:
            parts.append(f"ETA {_duration(eta)}")
        parts += [f"{k} {_fmt(v)}" for k, v in self.shown.items()]
        return ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "lines":
            log.info(self.line())
        self.mode = "closed"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
