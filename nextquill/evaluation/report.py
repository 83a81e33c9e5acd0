"""Render the token-effect report (one offline HTML page) and the training-loss plot (one PNG).

Pure rendering: nothing here loads a model. The HTML page carries its own CSS and inline SVG, and a
Content-Security-Policy that forbids every fetch, so it opens the same from file:// on an offline machine.
"""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path

from nextquill.io import atomic_open

DCE_CLAMP = 0.5  # most DCEs sit well inside ±0.5; clamping there keeps the colour scale readable
HIST_BINS = 20
_RED = (214, 39, 40)
_BLUE = (31, 119, 180)
_SKIP_COLUMNS = {"step", "epoch", "learning_rate", "grad_norm"}

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table.summary { border-collapse: collapse; margin: 0.5em 0 1em; }
table.summary td, table.summary th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
.example { border: 1px solid #ddd; border-radius: 4px; padding: 0.5em 0.8em; margin: 0.8em 0; }
.meta { color: #555; font-size: 0.9em; margin-bottom: 0.3em; }
.text { font-family: monospace; white-space: pre-wrap; line-height: 1.9; }
.tok { border-bottom: 2px solid transparent; }
.pred { border-bottom: 2px solid #000; }
.gold { font-weight: bold; outline: 1px dotted #333; }
.legend span.swatch { display: inline-block; width: 3.4em; text-align: center; font-size: 0.8em; }
.hists { display: flex; gap: 2em; flex-wrap: wrap; }
"""


def _blend(dce: float) -> str:
    """Diverging colour: white at 0, towards red for positive DCE and blue for negative, clamped."""
    if not math.isfinite(dce):
        return "rgb(238,238,238)"  # grey, so a NaN effect is visible rather than passing for zero
    t = min(abs(dce), DCE_CLAMP) / DCE_CLAMP
    end = _RED if dce > 0 else _BLUE
    r, g, b = (round(255 + (c - 255) * t) for c in end)
    return f"rgb({r},{g},{b})"


def _histogram(values: list[float], lo: float, hi: float, bins: int = HIST_BINS) -> list[int]:
    """Counts per equal-width bin over [lo, hi]; values outside are put in the edge bins."""
    counts = [0] * bins
    width = (hi - lo) / bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
    return counts


def _range(values: list[float]) -> tuple[float, float]:
    """Data range for the weight histogram, widened when all weights are equal (e.g. uniform SFT)."""
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    return (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)


def _histogram_svg(name: str, values: list[float], lo: float, hi: float) -> str:
    """An inline SVG bar chart; each bar carries data-count/data-lo/data-hi so tests can read the bins."""
    finite = [v for v in values if math.isfinite(v)]
    counts = _histogram(finite, lo, hi)
    w, h, pad = 360, 140, 20
    bar_w = w / len(counts)
    peak = max(counts) or 1
    bars = []
    for i, c in enumerate(counts):
        b_lo, b_hi = lo + i * (hi - lo) / len(counts), lo + (i + 1) * (hi - lo) / len(counts)
        bh = (h - pad) * c / peak
        bars.append(
            f'<rect class="bin" x="{i * bar_w:.1f}" y="{h - pad - bh:.1f}" width="{bar_w - 1:.1f}" '
            f'height="{bh:.1f}" fill="#6a8caf" data-count="{c}" data-lo="{b_lo:.4g}" data-hi="{b_hi:.4g}">'
            f"<title>[{b_lo:.3g}, {b_hi:.3g}): {c}</title></rect>"
        )
    dropped = len(values) - len(finite)
    note = f" ({dropped} non-finite left out)" if dropped else ""
    axis = (
        f'<text x="0" y="{h - 4}" font-size="11">{lo:.3g}</text>'
        f'<text x="{w}" y="{h - 4}" font-size="11" text-anchor="end">{hi:.3g}</text>'
    )
    return (
        f"<figure><figcaption>{html.escape(name)}: {len(finite)} tokens{note}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" id="hist-{name}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img">{"".join(bars)}{axis}</svg></figure>'
    )


def _summary_table(summary: dict) -> str:
    """Key/value rows; floats get 4 significant digits, None shows as an em dash."""
    rows = []
    for key, value in summary.items():
        if value is None:
            shown = "—"
        elif isinstance(value, float):
            shown = f"{value:.4g}"
        else:
            shown = str(value)
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(shown)}</td></tr>")
    return f'<table class="summary">{"".join(rows)}</table>'


def _legend() -> str:
    """Swatches across the clamped DCE range, plus a key to the two token markers."""
    steps = [DCE_CLAMP * k / 4 for k in range(-4, 5)]
    swatches = "".join(f'<span class="swatch" style="background:{_blend(s)}">{s:+.2f}</span>' for s in steps)
    return (
        f'<div class="legend">DCE colour (clamped at ±{DCE_CLAMP}): {swatches}<br>'
        '<span class="key pred">underlined</span>: predicted preference-bearing (DCE &gt; δ); '
        '<span class="key gold">bold, dotted</span>: ground-truth preference token</div>'
    )


def _check_lengths(ex: dict) -> None:
    """Fail loudly on ragged inputs: a silent zip would colour the wrong tokens."""
    n = len(ex["tokens"])
    for key in ("dce", "weights", "pref_label"):
        if ex.get(key) is not None and len(ex[key]) != n:
            raise ValueError(f"example {ex['example_id']!r}: {len(ex[key])} {key} for {n} tokens")


def _example_html(ex: dict) -> str:
    """One example: its id and category, then every target token as a coloured span."""
    _check_lengths(ex)
    labels = ex.get("pref_label")
    delta = float(ex["delta"])
    spans = []
    for i, (tok, dce, weight) in enumerate(zip(ex["tokens"], ex["dce"], ex["weights"], strict=True)):
        classes = ["tok"]
        if dce > delta:
            classes.append("pred")
        if labels is not None and labels[i] == 1:
            classes.append("gold")
        tip = f"DCE {dce:+.3f}, weight {weight:.3g}" + (f", label {labels[i]}" if labels is not None else "")
        spans.append(
            f'<span class="{" ".join(classes)}" style="background:{_blend(dce)}" '
            f'title="{html.escape(tip)}">{html.escape(tok)}</span>'
        )
    n_pred = sum(d > delta for d in ex["dce"])
    meta = (
        f"<b>{html.escape(str(ex['example_id']))}</b> · {html.escape(str(ex['category']))} · "
        f"{len(ex['tokens'])} tokens, {n_pred} with DCE &gt; δ={delta:.3g}"
    )
    return f'<div class="example"><div class="meta">{meta}</div><div class="text">{"".join(spans)}</div></div>'


def token_effect_html(examples: list[dict], title: str, summary: dict) -> str:
    """One self-contained HTML page: summary table, colour legend, DCE-coloured examples and two histograms.

    Each example needs `example_id`, `category`, `tokens`, `dce`, `weights` (same length), `pref_label`
    (0/1 per token, or None) and `delta`. Nothing on the page is fetched: no scripts, fonts or URLs.
    """
    dces = [float(d) for ex in examples for d in ex["dce"]]
    weights = [float(w) for ex in examples for w in ex["weights"]]
    finite_w = [w for w in weights if math.isfinite(w)]
    body = "".join(_example_html(ex) for ex in examples) or '<p class="empty">No examples to show.</p>'
    hists = _histogram_svg("dce", dces, -1.0, 1.0) + _histogram_svg("weight", weights, *_range(finite_w))
    # The CSP makes "offline" enforceable: a stray external reference would be blocked and logged.
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{_summary_table(summary)}{_legend()}"
        f'<h2>Distributions</h2><div class="hists">{hists}</div>'
        f"<h2>Examples ({len(examples)})</h2>{body}"
        '<div id="nq-report-ready" hidden></div></body></html>\n'
    )


def _read_loss_columns(csv_path: Path) -> dict[str, list[tuple[float, float]]]:
    """(step, value) pairs per numeric `loss*` column; empty cells are missing values and are skipped."""
    if not csv_path.is_file():
        return {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    names = [n for n in rows[0] if n and n.startswith("loss") and n not in _SKIP_COLUMNS]
    series: dict[str, list[tuple[float, float]]] = {}
    for name in names:
        points = []
        try:
            for row in rows:
                step, value = (row.get("step") or "").strip(), (row.get(name) or "").strip()
                if step and value:
                    points.append((float(step), float(value)))
        except ValueError:
            continue  # a non-numeric column (e.g. a label) is not a loss curve
        if points:
            series[name] = points
    return series


def write_loss_plot(csv_path: Path, png_path: Path) -> Path | None:
    """Plot every `loss*` column of a training-log CSV over `step` into a PNG, written atomically.

    A missing or empty log still yields a PNG saying so, because DVC declares the plot as an output.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on CI or in DVC stages
    from matplotlib.figure import Figure  # a bare Figure keeps no global pyplot state between calls

    series = _read_loss_columns(Path(csv_path))
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.subplots()
    if series:
        for name, points in series.items():
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, label=name, marker="." if len(points) < 30 else None)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()
        ax.grid(alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no training log", ha="center", va="center", fontsize=16, transform=ax.transAxes)
        ax.set_axis_off()
    fig.tight_layout()
    with atomic_open(png_path, "wb") as handle:
        fig.savefig(handle, format="png", metadata={"Software": None})  # no version stamp: stable bytes
    return Path(png_path)
