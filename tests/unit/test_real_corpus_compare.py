"""The real-corpus driver's parameters: the table covers every committed record, not only this call's runs."""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import yaml

from nextquill.config import parse_params

ROOT = Path(__file__).resolve().parents[2]


def _driver():
    path = ROOT / "benchmarks" / "real_corpus_compare.py"
    spec = importlib.util.spec_from_file_location("real_corpus_compare", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_recorded_runs_join_this_calls_methods_and_seeds(tmp_path):
    runs = tmp_path / "comparison" / "runs"
    for folder in ("base_history", "context_sft/seed42", "sft/seed42", "sft/seed43", "nextquill/seed42/partial"):
        (runs / folder).mkdir(parents=True)
    for folder in ("base_history", "context_sft/seed42", "sft/seed42", "sft/seed43"):
        (runs / folder / "run.json").write_text(json.dumps({}))
    # a run that never wrote its run.json is not a record
    args = argparse.Namespace(methods=["nextquill"], zero_shot=[], seeds=[44])
    written = _driver().write_params(tmp_path, args)
    parse_params(yaml.safe_load(written.read_text()))  # the project's parser accepts it
    params = yaml.safe_load(written.read_text())
    compare = params["compare"]
    assert compare["methods"] == ["nextquill", "context_sft", "sft"]  # this call's first, then the recorded ones
    assert compare["zero_shot"] == ["base_history"] and compare["derived"] == []
    assert compare["seeds"] == compare["reading_seeds"] == [42, 43, 44] and compare["readings"] == []
    assert params["data"]["format"] == "longlamp" and params["data"]["task"] == "topic_writing"
    project = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["train"] == project["train"] and params["eval"] == project["eval"]  # the embedded budget
