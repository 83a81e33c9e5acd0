"""Where the token weights go: the evaluated model's DCE weights on the gold test tokens, by kind of token.

    .venv/bin/python benchmarks/weight_share.py            # after `dvc repro` (reads data/eval/token_effects.jsonl)
    .venv/bin/python benchmarks/weight_share.py --root comparison/work/nextquill/seed42 --out ...

Every gold target token of `token_effects.jsonl` (the weights ω and DCE of the evaluated model, as the
`evaluate` stage wrote them) falls in one class: `eos` (the end-of-text token), one of the embedded benchmark's
preference kinds (opener, aspect, intensifier, signature, punctuation, sign_off: from the truth sidecar's
character spans), `item` (a word of the item's title or description, in no preference span) or `other`.
Per class: the share of the tokens, the share of the total weight, the mean weight and DCE, and the share
of the class above δ. Written to `benchmarks/results/weight_share.json`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
ITEM_FIELD = re.compile(r"^\[Item (?:Title|Description)\]: (.*)$", re.MULTILINE)


def load_spans(raw_dir: Path) -> dict[tuple[str, str], list[dict]]:
    spans = {}
    for line in (raw_dir / "preference_spans.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["field"] == "text" and rec["noise"] is None:
            spans[(rec["user_id"], rec["parent_asin"])] = rec["spans"]
    return spans


def token_classes(tokenizer, row: dict, spans: list[dict] | None, n_tokens: int) -> list[str]:
    """One class per gold token of `row` (the prepared example): eos, a preference kind, item or other."""
    enc = tokenizer(row["target"], add_special_tokens=False, return_offsets_mapping=True)
    item_text = " ".join(ITEM_FIELD.findall(row["prompt_without"]))  # the item's title and description only
    item_words = {w.lower() for w in WORD.findall(item_text)}
    classes = []
    for i in range(n_tokens):
        if i >= len(enc["input_ids"]) or row["target_ids"][i] != enc["input_ids"][i]:
            classes.append("eos" if row["target_ids"][i] == tokenizer.eos_token_id else "other")
            continue
        start, end = enc["offset_mapping"][i]
        kind = next((s["kind"] for s in spans or () if s["start"] < end and start < s["end"]), None)
        text = row["target"][start:end].strip().lower()
        classes.append(kind or ("item" if text and text in item_words else "other"))
    return classes


def shares(effects: list[dict], rows: dict[str, dict], spans: dict, tokenizer, delta: float) -> dict:
    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in effects:
        row = rows[e["example_id"]]
        for cls, w, d in zip(token_classes(tokenizer, row, spans.get((row["user_id"], row["item_id"])),
                                           len(e["target_ids"])), e["weights"], e["dce"], strict=True):
            s = stats[cls]
            s["tokens"] += 1
            s["weight"] += w
            s["dce"] += d
            s["above_delta"] += d > delta
    total_tokens = sum(s["tokens"] for s in stats.values())
    total_weight = sum(s["weight"] for s in stats.values())
    return {cls: {"token_share": s["tokens"] / total_tokens, "weight_share": s["weight"] / total_weight,
                  "mean_weight": s["weight"] / s["tokens"], "mean_dce": s["dce"] / s["tokens"],
                  "above_delta": s["above_delta"] / s["tokens"], "tokens": int(s["tokens"])}
            for cls, s in sorted(stats.items(), key=lambda kv: -kv[1]["weight"])}


def main() -> None:
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from nextquill.config import load_params
    from nextquill.io import write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("."), help="folder holding data/eval/token_effects.jsonl")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/weight_share.json"))
    args = p.parse_args()
    params = load_params(args.params)
    tokenizer = AutoTokenizer.from_pretrained("models/base")
    effects = [json.loads(x) for x in (args.root / "data/eval/token_effects.jsonl").read_text().splitlines()]
    split = pq.read_table(f"data/prepared/{params.eval.split}.parquet").to_pylist()
    rows = {r["example_id"]: r for r in split}
    result = {"source": str(args.root / "data/eval/token_effects.jsonl"), "examples": len(effects),
              "delta": params.effects.delta,
              "classes": shares(effects, rows, load_spans(Path(params.data.raw_dir)), tokenizer,
                                params.effects.delta)}
    write_json(args.out, result)
    for cls, s in result["classes"].items():
        print(f"{cls:12s} tokens {s['token_share']:.3f}  weight {s['weight_share']:.3f}  mean ω {s['mean_weight']:.3f}"
              f"  mean DCE {s['mean_dce']:+.4f}  above δ {s['above_delta']:.3f}")


if __name__ == "__main__":
    main()
