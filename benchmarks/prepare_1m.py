"""Benchmark of the `prepare` stage on a 1-million-review Amazon Reviews 2023 Books file.

It writes a raw Books dump shaped like the real one: long-tailed users and Zipf item popularity,
varied text lengths, rows the DPL filters drop, and a few malformed lines. Then it runs
`python -m nextquill.stages.prepare` on the dump as a child process and reports:

- wall time and throughput (input reviews per second);
- the child's peak RSS, from `os.wait4`'s rusage (target: under 2 GiB);
- what the protocol kept: users, examples per split, rejects and protocol drops.

    .venv/bin/python benchmarks/prepare_1m.py                           # 1M reviews, one run
    .venv/bin/python benchmarks/prepare_1m.py --reviews 100000 --repeat 3

The tokenizer comes from models/base: run `make run` (or `python -m nextquill.stages.base_model`) first.
Raw files and stage outputs go under --work; the numbers go to --out as JSON.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
RAW_DIR = "raw"  # data.raw_dir, relative to the benchmark root
DAY_MS = 86_400_000
T0, T1 = 946_684_800_000, 1_693_526_400_000  # 2000-01-01 .. 2023-09-01, unix milliseconds

# No quotes or backslashes anywhere, so texts go into JSON lines without escaping; a few words are
# non-ASCII and `<br />` appears as in the real dump, so decoding and HTML survive as they do there.
_VOCAB = """the a and of to in it is was this that book story author novel read reading characters plot
ending chapter chapters writing style series first last second page pages world life love family war
history mystery romance thriller fantasy detective murder town city house school summer winter night
really very quite rather too so just still never always often again finally slowly quickly well
good great wonderful beautiful boring slow fast clever funny sad dark light deep simple complex
strong weak believable predictable surprising moving gripping engaging tedious charming brilliant
I we you he she they my our his her their me him them who which what when where why how
loved liked enjoyed hated finished started recommend bought gave expected found thought felt wanted
would could should might will can did does had has have be been being are were not no but or if
because although while after before during through about between into over under with without for
on at by from up down out more most less least some many few every each other another same new old
young whole half long short little big small best worst better worse kind sort part time year day
way people friend friends mother father daughter son sister brother wife husband king queen doctor
teacher soldier village island river sea mountain forest garden road journey secret truth lie death
café naïve façade rôle — <br_/>"""
WORDS = [word.replace("_", " ") for word in _VOCAB.split()]
NAMES = "Adams Baker Clark Davis Evans Foster Green Hughes Irving Jones Keller Lopez Moore Novak Owens Price".split()
TITLES_A = "Great Good Wonderful Solid Disappointing Enjoyable Gripping Slow Beautiful Surprising Fun Sad".split()
TITLES_B = "read book story novel ending series start page-turner debut sequel mystery romance".split()
RATING_P = np.array([0.05, 0.05, 0.09, 0.20, 0.61])  # 1..5 stars, skewed to 5 as in the real dump
GENRES = "Literature & Fiction|Mystery, Thriller & Suspense|Romance|Science Fiction & Fantasy|History".split("|")


@dataclass(frozen=True)
class Spec:
    """Sizes and noise shares of the generated dump (shares are of all review lines)."""

    reviews: int
    seed: int
    items: int
    heavy_users: int
    head_items: int  # the popular books heavy users pick from
    duplicate: float = 0.01  # older copy of a review, same user, item and text
    missing_title: float = 0.008
    unknown_item: float = 0.003  # parent_asin with no meta line
    empty_text: float = 0.0005
    truncated_json: float = 0.0005  # malformed lines: the reject path
    missing_field: float = 0.0001
    empty_line: float = 0.00005  # records.py reports these as malformed_json too

    @classmethod
    def scaled(cls, reviews: int, seed: int) -> Spec:
        """Per million reviews: ~50k items, ~900 users with 18-60 reviews over the 3,000 most popular items."""
        scale = reviews / 1_000_000
        heavy = max(60, round(900 * scale))
        return cls(reviews, seed, items=max(2_000, round(50_000 * scale)), heavy_users=heavy,
                   head_items=max(200, round(heavy * 10 / 3)))


# ---------------------------------------------------------------------------------------------- generation


def build_corpus(rng: np.random.Generator, chars: int = 4_000_000) -> tuple[str, list[int]]:
    """Sentences of vocabulary words, and the sentence starts a 3000-character slice fits after.

    Texts and descriptions are slices of this one string, so writing a line costs no templating.
    """
    words = np.array(WORDS)
    parts, starts, size = [], [], 0
    while size < chars:
        sentence = " ".join(words[rng.integers(0, len(words), int(rng.integers(5, 22)))].tolist())
        starts.append(size)
        parts.append(sentence[0].upper() + sentence[1:] + (". " if rng.random() < 0.85 else "! "))
        size += len(parts[-1])
    return "".join(parts), [s for s in starts if s < size - 3_100]


def slice_text(corpus: str, start: int, length: int) -> str:
    """About `length` characters of the corpus from `start`, cut back to a space so words stay whole."""
    if length <= 0:
        return ""
    cut = corpus.rfind(" ", start, start + length)
    return corpus[start:cut if cut > start + length // 2 else start + length]


def user_counts(rng: np.random.Generator, total: int, heavy: int) -> np.ndarray:
    """Reviews per user: `heavy` users with 18-60, then a power law over 1-17 (most users write 1-3)."""
    heavy_counts = rng.integers(18, 61, heavy)
    left = total - int(heavy_counts.sum())
    ks = np.arange(1, 18)
    p = ks**-2.0 / (ks**-2.0).sum()
    light = rng.choice(ks, size=int(left / (p @ ks) * 1.2) + 10, p=p)
    light = light[: int(np.searchsorted(np.cumsum(light), left)) + 1]
    light[-1] -= int(light.sum()) - left  # the last user takes what is left, so the total is exact
    return np.concatenate([heavy_counts, light[light > 0]]).astype(np.int64)


def zipf_p(n: int, s: float, offset: float = 0.0) -> np.ndarray:
    """Zipf(-Mandelbrot) weights of ranks 1..n; `offset` flattens the head."""
    p = 1.0 / (np.arange(1, n + 1) + offset) ** s
    return p / p.sum()


def draw_items(rng: np.random.Generator, counts: np.ndarray, spec: Spec) -> np.ndarray:
    """Item per review, Zipf-popular; a heavy user reviews each item once, leaning on the popular head."""
    light_rows = int(counts[spec.heavy_users:].sum())
    cdf = np.cumsum(zipf_p(spec.items, 1.0, offset=10))  # top book ~1% of reviews, tail books 1-3
    light = np.minimum(np.searchsorted(cdf, rng.random(light_rows)), spec.items - 1)
    head = min(spec.items, spec.head_items)  # heavy readers review popular books: what lets the k-core keep them
    p_head = zipf_p(head, 0.9)
    heavy = [rng.choice(head, size=int(k), replace=False, p=p_head) for k in counts[: spec.heavy_users]]
    return np.concatenate([*heavy, light]).astype(np.int64)


def draw_reviews(rng: np.random.Generator, spec: Spec, n_starts: int) -> dict[str, np.ndarray]:
    """Columns of the clean reviews: `spec.reviews` minus the duplicates `add_noise` appends."""
    base = spec.reviews - round(spec.reviews * spec.duplicate)
    counts = user_counts(rng, base, spec.heavy_users)
    return {
        "user": np.repeat(np.arange(len(counts)), counts), "item": draw_items(rng, counts, spec),
        "ts": T0 + ((T1 - T0) * np.sqrt(rng.random(base))).astype(np.int64),  # more reviews in later years
        "rating": rng.choice(np.arange(1, 6), size=base, p=RATING_P),
        "length": np.clip(rng.lognormal(np.log(550), 0.6, base), 100, 1500).astype(np.int64),  # ~5% < 200
        "start": rng.integers(0, n_starts, base), "title": rng.integers(0, len(TITLES_A) * len(TITLES_B), base),
        "helpful": np.minimum(rng.geometric(0.5, base) - 1, 250), "verified": rng.random(base) < 0.85,
        "variant": rng.random(base) < 0.2, "bad": np.zeros(base, dtype=np.int8),
    }


def add_noise(rng: np.random.Generator, cols: dict[str, np.ndarray], spec: Spec) -> dict[str, np.ndarray]:
    """Append duplicates, spoil some rows for the filters and some lines for the parser, then shuffle."""
    base = len(cols["ts"])
    dup = rng.choice(base, size=spec.reviews - base, replace=False)
    cols = {k: np.concatenate([v, v[dup]]) for k, v in cols.items()}
    cols["ts"][base:] -= rng.integers(1, 30, len(dup)) * DAY_MS  # an older copy: de-duplication keeps the newer

    def pick(share: float) -> np.ndarray:
        return rng.choice(spec.reviews, size=round(spec.reviews * share), replace=False)

    cols["title"][pick(spec.missing_title)] = -1
    unknown = pick(spec.unknown_item)
    cols["item"][unknown] = spec.items + rng.integers(0, 500, len(unknown))  # asins past `items` have no meta
    cols["length"][pick(spec.empty_text)] = 0
    for code, share in ((1, spec.truncated_json), (2, spec.missing_field), (3, spec.empty_line)):
        cols["bad"][pick(share)] = code
    order = rng.permutation(spec.reviews)
    return {k: v[order] for k, v in cols.items()}


def make_ids(rng: np.random.Generator, n: int, width: int, prefix: str, alphabet: str) -> list[str]:
    """`n` distinct ids shaped like Amazon's: user ids `A` + 27 of A-Z0-9, ISBN-10-like ASINs."""
    chars = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    ids: dict[str, None] = {}
    while len(ids) < n:
        codes = np.ascontiguousarray(chars[rng.integers(0, len(chars), (n, width))])
        ids.update(dict.fromkeys(prefix + b.decode() for b in codes.view(f"S{width}").ravel()))
    return list(ids)[:n]


class ReviewWriter:
    """Formats review lines straight from the columns: one f-string a line, no json.dumps."""

    KEYS = ("user", "item", "ts", "rating", "length", "start", "title", "helpful", "verified", "variant", "bad")

    def __init__(self, corpus: str, starts: list[int], users: list[str], asins: list[str]):
        self.corpus, self.starts, self.users, self.asins = corpus, starts, users, asins

    def line(self, user, item, ts, rating, length, start, title, helpful, verified, variant, bad) -> str:
        if bad == 3:
            return "\n"
        asin = self.asins[item]
        title = "" if title < 0 else f"{TITLES_A[title % len(TITLES_A)]} {TITLES_B[title // len(TITLES_A)]}"
        text = slice_text(self.corpus, self.starts[start], length)
        user_field = "" if bad == 2 else f'"user_id": "{self.users[user]}", '
        line = (f'{{"rating": {rating:.1f}, "title": "{title}", "text": "{text}", "images": [], '
                f'"asin": "{asin[:-1] + "X" if variant else asin}", "parent_asin": "{asin}", {user_field}'
                f'"timestamp": {ts}, "helpful_vote": {helpful}, "verified_purchase": {str(verified).lower()}}}\n')
        return line[: len(line) // 2] + "\n" if bad == 1 else line  # 1: truncated JSON

    def write(self, path: Path, cols: dict[str, np.ndarray], chunk: int = 100_000) -> None:
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for lo in range(0, len(cols["ts"]), chunk):  # numpy to Python in chunks keeps the generator small
                rows = zip(*(cols[k][lo:lo + chunk].tolist() for k in self.KEYS), strict=True)
                out.writelines(self.line(*row) for row in rows)


def meta_record(rng: np.random.Generator, asin: str, n_reviews: int, kind: int, writer: ReviewWriter) -> dict:
    """One `meta_Books.jsonl` object; `kind` > 0 makes it fail one DPL meta filter."""
    length = int(rng.integers(20, 90) if kind == 1 else rng.integers(2_100, 3_000) if kind == 2
                 else np.clip(rng.lognormal(np.log(600), 0.5), 120, 1_750))
    description = [slice_text(writer.corpus, writer.starts[int(rng.integers(len(writer.starts)))], length)]
    if rng.random() < 0.4:  # the DPL filter strips a leading "Product Description" entry
        description.insert(0, "Product Description")
    author = " ".join(NAMES[int(i)] for i in rng.integers(0, len(NAMES), 2))
    return {
        "main_category": "Books", "title": "" if kind == 3 else f"{TITLES_A[int(rng.integers(12))]} {asin}",
        "subtitle": "Paperback", "author": {"name": author}, "average_rating": round(float(rng.uniform(3, 5)), 1),
        "rating_number": None if kind == 5 else n_reviews + int(rng.integers(0, 400)),
        "features": [], "description": description, "price": round(float(rng.uniform(4.99, 39.99)), 2),
        "images": [], "videos": [], "store": author,
        "categories": [] if kind == 4 else ["Books", GENRES[int(rng.integers(len(GENRES)))]],
        "details": {"Publisher": "Example House", "Language": "English"}, "parent_asin": asin,
        "bought_together": None,
    }


def write_meta(rng: np.random.Generator, path: Path, items: int, item_col: np.ndarray, writer: ReviewWriter) -> None:
    """One line per item (about 5% fail the meta filter), 0.1% repeated, and two truncated lines."""
    n_reviews = np.bincount(item_col, minlength=items)
    kinds = rng.choice(6, size=items, p=[0.946, 0.03, 0.01, 0.005, 0.005, 0.004])
    repeat = set(rng.choice(items, size=max(1, items // 1000), replace=False).tolist())
    broken = set(rng.choice(items, size=2, replace=False).tolist())
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for i in range(items):
            line = json.dumps(meta_record(rng, writer.asins[i], int(n_reviews[i]), int(kinds[i]), writer),
                              ensure_ascii=False)
            out.write((line[: len(line) // 3] if i in broken else line) + "\n")
            if i in repeat:  # a second line for the same item: the protocol keeps the first
                out.write(line + "\n")


def generate(spec: Spec, raw: Path) -> dict:
    """Write `raw/review_categories/Books.jsonl` and `raw/meta_categories/meta_Books.jsonl`."""
    start = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    corpus, starts = build_corpus(rng)
    cols = add_noise(rng, draw_reviews(rng, spec, len(starts)), spec)
    users = make_ids(rng, int(cols["user"].max()) + 1, 27, "A", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    writer = ReviewWriter(corpus, starts, users, make_ids(rng, spec.items + 500, 10, "", "0123456789"))
    reviews = raw / "review_categories" / "Books.jsonl"
    meta = raw / "meta_categories" / "meta_Books.jsonl"
    for path in (reviews, meta):
        path.parent.mkdir(parents=True, exist_ok=True)
    writer.write(reviews, cols)
    write_meta(rng, meta, spec.items, cols["item"][cols["item"] < spec.items], writer)
    return {"seconds": round(time.perf_counter() - start, 2), "users": len(users), "items": spec.items,
            "review_bytes": reviews.stat().st_size, "meta_bytes": meta.stat().st_size}


# ---------------------------------------------------------------------------------------------- measurement


def setup_root(root: Path, args: argparse.Namespace) -> Path:
    """The tokenizer in `root/models/base` and a complete params.yaml whose `data` points at the dump."""
    base = REPO / "models" / "base"
    if not all((base / name).is_file() for name in TOKENIZER_FILES):
        raise SystemExit(f"{base} has no tokenizer: run `make run` first, or "
                         "`.venv/bin/python -m nextquill.stages.base_model`")
    (root / "models" / "base").mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copy2(base / name, root / "models" / "base" / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update({"format": "amazon2023", "raw_dir": RAW_DIR, "categories": ["Books"]})
    if args.threads is not None:
        params["data"]["threads"] = args.threads
    if args.duckdb_memory_gb is not None:
        params["data"]["duckdb_memory_gb"] = args.duckdb_memory_gb
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


class Monitor(threading.Thread):
    """Samples the child's RSS and notes when the stage's working files appear, to split time into phases.

    The stage logs nothing between start and end, so its files are the phase markers: the protocol's
    temp folder appears once the tokenizer is loaded, `protocol.duckdb` once the raw files are in
    Parquet, and `dropped.parquet` once every example is written.
    """

    MARKERS = (("load_raw", ".prepare-*"), ("protocol_and_examples", ".prepare-*/protocol.duckdb"),
               ("finalize", ".prepared.*.tmp/dropped.parquet"))

    def __init__(self, pid: int, data: Path, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.data, self.interval, self.done = pid, data, interval, threading.Event()
        self.t0, self.phases, self.samples = time.perf_counter(), [("startup", 0.0)], []

    def rss_mib(self) -> float | None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        kib = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")]
        return kib[0] / 1024 if kib else None  # a zombie child has no VmRSS line

    def run(self) -> None:
        while not self.done.wait(self.interval):
            now = time.perf_counter() - self.t0
            rss = self.rss_mib()
            if rss is not None:
                self.samples.append((now, rss))
            for name, pattern in self.MARKERS[len(self.phases) - 1:]:
                if glob.glob(str(self.data / pattern)):
                    self.phases.append((name, now))

    def summary(self, wall: float) -> dict:
        """Seconds and sampled peak RSS of each phase (sampling misses spikes shorter than `interval`)."""
        out = {}
        bounds = [t for _, t in self.phases[1:]] + [wall]
        for (name, begin), end in zip(self.phases, bounds, strict=True):
            peak = max((rss for t, rss in self.samples if begin <= t < end), default=None)
            out[name] = {"seconds": round(end - begin, 2), "sampled_peak_rss_mib": peak and round(peak, 1)}
        return out


def run_stage(root: Path, params: Path, log: Path) -> dict:
    """One `prepare` run in a child process: wall time, peak RSS (from wait4), phase split."""
    for stale in (root / "data" / "prepared", root / "reports"):
        shutil.rmtree(stale, ignore_errors=True)
    cmd = [sys.executable, "-m", "nextquill.stages.prepare", "--params", str(params), "--root", str(root)]
    with log.open("w", encoding="utf-8") as handle:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
        monitor = Monitor(proc.pid, root / "data")
        monitor.start()
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the max over every run so far.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        monitor.done.set()
        monitor.join()
    if proc.returncode != 0:
        tail = "".join(log.read_text(encoding="utf-8").splitlines(keepends=True)[-15:])
        raise SystemExit(f"prepare failed with exit code {proc.returncode}; log {log}:\n{tail}")
    kib = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(kib / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "phases": monitor.summary(wall)}


def machine() -> dict:
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # platform.processor() is often empty or just the arch on Linux
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    versions = {name: metadata.version(name) for name in ("duckdb", "pyarrow", "tokenizers", "transformers")}
    return {"cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)), "processor": model,
            "uname": " ".join(platform.uname()), "ram_gib": round(ram / 2**30, 1),
            "python": platform.python_version(), **versions}


def summarize(spec: Spec, gen: dict, runs: list[dict], stats: dict, params: dict) -> dict:
    wall = statistics.median(r["wall_s"] for r in runs)
    peak = max(r["peak_rss_mib"] for r in runs)
    protocol = stats.get("protocol", {})
    return {
        "reviews": spec.reviews, "spec": asdict(spec), "input_bytes": gen["review_bytes"] + gen["meta_bytes"],
        "generation": gen, "prepare_wall_s_median": wall, "prepare_wall_s_runs": [r["wall_s"] for r in runs],
        "reviews_per_s": round(spec.reviews / wall), "peak_rss_mib": peak, "peak_rss_under_2gib": peak < 2048,
        "runs": runs, "users_kept": stats["users"], "kept_reviews": protocol.get("kept_reviews"),
        "examples": stats["examples"], "rejects": stats["rejects"], "rejects_total": stats["rejects_total"],
        "protocol_dropped": protocol.get("dropped", {}),
        "kcore_rounds": protocol.get("kcore_rounds"), "profile_rounds": protocol.get("profile_rounds"),
        "data_params": {k: params["data"][k] for k in ("threads", "duckdb_memory_gb", "max_prompt_tokens")},
        "machine": machine(),
    }


def print_table(result: dict) -> None:
    runs = ", ".join(f"{w:.1f}" for w in result["prepare_wall_s_runs"])
    phases = result["runs"][-1]["phases"]
    rows = [
        ("reviews", f"{result['reviews']:,}"), ("input size", f"{result['input_bytes'] / 2**20:,.0f} MiB"),
        ("generation", f"{result['generation']['seconds']:.1f} s"),
        ("prepare wall (median)", f"{result['prepare_wall_s_median']:.1f} s  (runs: {runs})"),
        ("throughput", f"{result['reviews_per_s']:,} reviews/s"),
        ("peak RSS", f"{result['peak_rss_mib']:,.0f} MiB  (< 2048 MiB: {result['peak_rss_under_2gib']})"),
        ("users kept", f"{result['users_kept']:,}"),
        ("examples", ", ".join(f"{k} {v:,}" for k, v in result["examples"].items())),
        ("rejects", f"{result['rejects_total']:,}  {result['rejects']}"),
        ("protocol drops", f"{sum(result['protocol_dropped'].values()):,}"),
        *((f"  {reason}", f"{n:,}") for reason, n in result["protocol_dropped"].items()),
        *((f"  phase {name}", f"{p['seconds']:.1f} s, sampled peak {p['sampled_peak_rss_mib']} MiB")
          for name, p in phases.items()),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=1_000_000, help="review lines to generate (default 1M)")
    parser.add_argument("--seed", type=int, default=2023, help="generator seed; same seed, same files")
    parser.add_argument("--repeat", type=int, default=1, help="prepare runs; the median wall time is reported")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "prepare_1m",
                        help="root for the raw dump and the stage's outputs (emptied first)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "prepare_1m.json")
    parser.add_argument("--threads", type=int, help="override data.threads (default: params.yaml's)")
    parser.add_argument("--duckdb-memory-gb", type=float, help="override data.duckdb_memory_gb")
    args = parser.parse_args(argv)
    root = args.work.resolve()
    shutil.rmtree(root, ignore_errors=True)
    params = setup_root(root, args)
    spec = Spec.scaled(args.reviews, args.seed)
    print(f"generating {spec.reviews:,} reviews into {root / RAW_DIR} ...", flush=True)
    gen = generate(spec, root / RAW_DIR)
    runs = []
    for i in range(args.repeat):
        print(f"prepare run {i + 1}/{args.repeat} ...", flush=True)
        runs.append(run_stage(root, params, root / f"prepare_run{i + 1}.log"))
    stats = json.loads((root / "reports" / "data_stats.json").read_text(encoding="utf-8"))
    result = summarize(spec, gen, runs, stats, yaml.safe_load(params.read_text(encoding="utf-8")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
