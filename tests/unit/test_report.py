"""The token-effect HTML page and the loss plot: escaping, bins, offline-ness, PNGs, and a real browser render."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nextquill.evaluation.report import token_effect_html, write_loss_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _examples() -> list[dict]:
    return [
        {
            "example_id": "u1-r3",
            "category": "Books",
            "tokens": ["I", " loved", " <b>&", ' "this"', "\n", " book", "<script>alert(1)</script>"],
            "dce": [0.0, 0.42, -0.3, 0.9, 0.01, -0.8, 0.2],
            "weights": [1.0, 2.0, 1.0, 3.0, 1.0, 1.0, 1.5],
            "pref_label": [0, 1, 0, 1, 0, 0, 0],
            "delta": 0.1,
        },
        {
            "example_id": "u2-r1",
            "category": "Toys & Games",
            "tokens": ["Fine", ".", " 'ok'"],
            "dce": [-0.05, 0.0, 0.15],
            "weights": [1.0, 1.0, 1.2],
            "pref_label": None,
            "delta": 0.1,
        },
    ]


SUMMARY = {"estimator": "reference", "roc_auc": 0.8123456, "precision@k": 0.5, "tokens": 10, "missing": None}


class _Page(HTMLParser):
    """Collects token spans (classes and text), histogram bins per SVG id, and every src/href value."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple[set[str], str]] = []
        self.bins: dict[str, list[int]] = {}
        self.links: list[str] = []
        self.ids: set[str] = set()
        self._in_tok = False
        self._svg: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.ids.add(a.get("id") or "")
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        classes = set((a.get("class") or "").split())
        if tag == "span" and "tok" in classes:
            self.tokens.append((classes, ""))
            self._in_tok = True
        if tag == "svg":
            self._svg = a.get("id")
        if tag == "rect" and "data-count" in a:
            self.bins.setdefault(self._svg, []).append(int(a["data-count"]))

    def handle_endtag(self, tag):
        if tag == "span":
            self._in_tok = False

    def handle_data(self, data):
        if self._in_tok:
            classes, text = self.tokens[-1]
            self.tokens[-1] = (classes, text + data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_tokens_are_escaped_and_one_span_each():
    page = token_effect_html(_examples(), "Report <x>", SUMMARY)
    assert "<b>&" not in page and "<script>alert" not in page
    assert "&lt;b&gt;&amp;" in page and "Report &lt;x&gt;" in page
    parsed = _parse(page)
    assert [text for _, text in parsed.tokens] == [t for ex in _examples() for t in ex["tokens"]]
    assert "nq-report-ready" in parsed.ids


def test_markers_follow_delta_and_labels():
    classes = [c for c, _ in _parse(token_effect_html(_examples(), "t", SUMMARY)).tokens]
    pred = [i for i, c in enumerate(classes) if "pred" in c]
    gold = [i for i, c in enumerate(classes) if "gold" in c]
    assert pred == [1, 3, 6, 9]  # dce > delta=0.1
    assert gold == [1, 3]  # the second example has no labels


def test_histogram_bins_sum_to_token_count():
    bins = _parse(token_effect_html(_examples(), "t", SUMMARY)).bins
    assert set(bins) == {"hist-dce", "hist-weight"}
    assert sum(bins["hist-dce"]) == sum(bins["hist-weight"]) == 10


def test_page_references_nothing_outside_itself():
    page = token_effect_html(_examples(), "t", SUMMARY)
    assert all(link.startswith(("#", "data:")) for link in _parse(page).links)
    assert "//cdn" not in page and "@import" not in page and "url(" not in page
    without_xmlns = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in without_xmlns and "https://" not in without_xmlns


def test_summary_values_and_empty_page():
    page = token_effect_html([], "empty", {"roc_auc": None, "n": 0})
    assert "No examples" in page and 'id="nq-report-ready"' in page
    assert sum(_parse(page).bins["hist-dce"]) == 0
    assert "0.8123" in token_effect_html(_examples(), "t", SUMMARY)


def test_ragged_example_is_rejected():
    bad = _examples()[:1]
    bad[0]["weights"] = bad[0]["weights"][:-1]
    with pytest.raises(ValueError, match="u1-r3"):
        token_effect_html(bad, "t", {})


def _write_log(path: Path, columns: list[str]) -> Path:
    lines = [",".join(["step", "epoch", *columns, "grad_norm", "learning_rate"])]
    for step in range(1, 6):
        values = [f"{2.0 / step + k:.3f}" if step != 3 else "" for k in range(len(columns))]  # row 3: empty cells
        lines.append(",".join([str(step), "0", *values, "1.0", "1e-4"]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loss_plot_is_a_png_and_depends_on_columns(tmp_path):
    one = write_loss_plot(_write_log(tmp_path / "a.csv", ["loss"]), tmp_path / "plots" / "a.png")
    two = write_loss_plot(_write_log(tmp_path / "b.csv", ["loss", "loss_dce"]), tmp_path / "b.png")
    assert one == tmp_path / "plots" / "a.png"
    assert one.read_bytes()[:8] == two.read_bytes()[:8] == PNG_MAGIC
    assert one.read_bytes() != two.read_bytes()


def test_loss_plot_without_log_still_writes_png(tmp_path):
    missing = write_loss_plot(tmp_path / "nope.csv", tmp_path / "missing.png")
    (tmp_path / "header.csv").write_text("step,epoch,loss\n")
    empty = write_loss_plot(tmp_path / "header.csv", tmp_path / "empty.png")
    assert missing.read_bytes()[:8] == empty.read_bytes()[:8] == PNG_MAGIC
    assert missing.read_bytes() == empty.read_bytes()  # both say "no training log"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


# --- a real browser: the page must render offline with no console errors -------------------------------------

_CONSOLE_ERROR = re.compile(r"Uncaught|ERROR:CONSOLE|Content Security Policy")


def _render(page: str, tmp_path: Path) -> tuple[str, list[str], Path]:
    """Open the page from file:// in headless Chromium; return the DOM, console-error lines and the screenshot."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("headless rendering needs Debian's chromium: apt-get install chromium")
    tmp_path.mkdir(parents=True, exist_ok=True)
    html_path, shot = tmp_path / "report.html", tmp_path / "shot.png"
    html_path.write_text(page, encoding="utf-8")
    cmd = [
        exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--dump-dom", f"--screenshot={shot}", "--window-size=1200,900", html_path.as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Container noise (dbus, GPU, sandbox warnings) is ignored; only page console errors count.
    errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and _CONSOLE_ERROR.search(line)]
    return proc.stdout, errors, shot


def _distinct_colours(png: Path) -> int:
    from PIL import Image

    with Image.open(png) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours)


@pytest.mark.integration
def test_chromium_renders_report(tmp_path):
    dom, errors, shot = _render(token_effect_html(_examples(), "Token effects", SUMMARY), tmp_path)
    assert "nq-report-ready" in dom
    assert dom.count('class="tok') == 10
    assert errors == []
    assert shot.read_bytes()[:8] == PNG_MAGIC
    assert _distinct_colours(shot) > 20  # not blank: coloured tokens, bars and text


@pytest.mark.integration
def test_chromium_check_catches_script_errors(tmp_path):
    """The console check is not vacuous: a throwing script, and a blocked external fetch, are both caught."""
    page = token_effect_html(_examples(), "t", SUMMARY)
    no_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    _, errors, _ = _render(no_csp.replace("</body>", "<script>undefined_fn()</script></body>"), tmp_path / "js")
    assert any("Uncaught" in line for line in errors)
    fetch = page.replace("</body>", '<img src="https://cdn.example.invalid/x.png"></body>')
    _, errors, _ = _render(fetch, tmp_path / "csp")
    assert any("Content Security Policy" in line for line in errors)
