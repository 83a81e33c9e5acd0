"""Prompt copies in the comparison's outputs, and whether the verdict survives their removal.

    .venv/bin/python benchmarks/field_echo.py                       # reads comparison/runs/, data/prepared/
    .venv/bin/python benchmarks/field_echo.py --runs benchmarks/results/real_corpus/runs \
        --prepared none --out benchmarks/results/real_corpus/field_echo.json

A model trained for few steps sometimes answers in the prompt's own layout: it starts with
`- [Item Title]: ...`, then `[Item Description]: ...` (the item's description, copied) or
`[Output Review Text]: ...`, before (or instead of) the review. The official protocol scores the raw output,
and so does the `evaluate` stage; this script does not change that. Per record of the methods of `compare.*`
it counts the outputs that start with a field marker and those that contain one, their length and ROUGE-1
precision and recall, and the share of their words copied from the prompt's item text and from the user's
past reviews (and that share of the references: the user's own phrases recur in what they write). Per method it
rescores every output under each control and pairs it with the baseline rescored the same way, over targets
(bootstrap, each target's score first averaged over the method's seeds, as in `comparison/results.md`) and
across matched training seeds (Student-t, `table.seed_versus`):

- `raw`: the output as scored by the protocol;
- `stripped`: the field markers removed, every word kept;
- `uncopied` (needs the prompts, `--prepared`): the markers removed, and every run of at least `--ngram`
  words copied verbatim from the prompt's item titles and descriptions (the target item's and those of
  the items in the history) removed too. The user's own past reviews in the prompt are not item text: a
  phrase the user always writes, copied from their history, is the personal signal and stays.

If copied prompt text were what a method's lead rested on, the lead would vanish under `uncopied`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nextquill.comparison.table import method_names, seed_versus, target_scores  # noqa: E402
from nextquill.config import load_params  # noqa: E402
from nextquill.evaluation.metrics import example_scores  # noqa: E402
from nextquill.evaluation.statistics import paired_difference  # noqa: E402

METRICS = ("rouge1", "rougeL", "meteor")
# A line that opens with a prompt field marker: "- [Item Title]: ", "[Output Review Text]: ", "[Review 1]:".
TAG = re.compile(r"^[ \t]*-?[ \t]*\[[^\]\n]{1,40}\]:[ \t]*", re.MULTILINE)
# The prompt's item text: the value of every item title and description field, the history's included.
ITEM_FIELD = re.compile(r"^[ \t]*-?[ \t]*\[Item (?:Title|Description)\]:[ \t]*(.*)$", re.MULTILINE)
# The user's own words in the prompt: the text of each past review of the history.
REVIEW_TEXT = re.compile(r"^[ \t]*-?[ \t]*\[Review Text\]:[ \t]*(.*)$", re.MULTILINE)
WORD = re.compile(r"[a-z0-9]+")  # ROUGE's tokens: lower-case letters and digits


def strip_tags(text: str) -> str:
    """`text` without its field markers; the words after each marker stay."""
    return TAG.sub("", text)


def item_ngrams(prompt: str, n: int) -> set[tuple[str, ...]]:
    """Every n-word run of the prompt's item text, each item's title and description read as one sequence
    (they stand next to each other in the prompt, so a copy runs from one into the other)."""
    words: list[str] = []
    grams: set[tuple[str, ...]] = set()
    fields = [m.group(0) for m in ITEM_FIELD.finditer(prompt)]
    for k, field in enumerate(fields):
        words += WORD.findall(ITEM_FIELD.match(field).group(1).lower())
        if k + 1 == len(fields) or "Title" in fields[k + 1]:  # this item ends here
            grams |= {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
            words = []
    return grams


def review_ngrams(prompt: str, n: int) -> set[tuple[str, ...]]:
    """Every n-word run of the user's past reviews in the prompt (each review's text on its own)."""
    grams: set[tuple[str, ...]] = set()
    for m in REVIEW_TEXT.finditer(prompt):
        words = WORD.findall(m.group(1).lower())
        grams |= {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    return grams


def uncopied(text: str, grams: set[tuple[str, ...]], n: int) -> tuple[str, float]:
    """`text` without its field markers and without every run of >= n words found in `grams`; and the share
    of its words removed that way. The characters between two removed words go with them."""
    text = strip_tags(text)
    tokens = [(m.start(), m.end(), m.group(0)) for m in WORD.finditer(text.lower())]
    copied = [False] * len(tokens)
    for i in range(len(tokens) - n + 1):
        if tuple(t[2] for t in tokens[i:i + n]) in grams:
            copied[i:i + n] = [True] * n
    kept, cursor, previous = [], 0, False
    for (start, end, _), gone in zip(tokens, copied, strict=True):
        if gone:
            if not previous:  # the text before a copied run stays; the gaps inside it go
                kept.append(text[cursor:start])
            cursor = end
        previous = gone
    kept.append(text[cursor:])
    return "".join(kept), (sum(copied) / len(tokens) if tokens else 0.0)


def load_prompts(prepared: Path) -> dict[str, str]:
    """{example_id: the with-history prompt} of the test split (`data/prepared/test.parquet`)."""
    import pyarrow.parquet as pq

    table = pq.read_table(prepared / "test.parquet", columns=["example_id", "prompt_with"])
    return dict(zip(table.column("example_id").to_pylist(), table.column("prompt_with").to_pylist(), strict=True))


def load_records(runs: Path, methods: list[str]) -> dict[str, dict[str, list[dict]]]:
    """{method: {"seed42" or "-": [prediction rows]}} for the record folders of `methods` under `runs`."""
    found: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for path in sorted(runs.glob("**/predictions.jsonl")):
        rel = path.parent.relative_to(runs).parts
        method, seed = (rel[0], rel[1]) if len(rel) == 2 else (rel[0], "-")
        if method in methods:
            found[method][seed] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


class Controls:
    """The rescoring controls; `uncopied` only when the prompts are known."""

    def __init__(self, prompts: dict[str, str] | None, n: int):
        self.n = n
        self.grams = {i: item_ngrams(p, n) for i, p in prompts.items()} if prompts else None
        self.history = {i: review_ngrams(p, n) for i, p in prompts.items()} if prompts else None
        self.kinds = ("raw", "stripped", "uncopied") if prompts else ("raw", "stripped")

    def _of(self, source: str, example_id: str) -> set[tuple[str, ...]]:
        grams = self.grams if source == "item" else self.history
        if example_id not in grams:
            raise SystemExit(f"no prompt for {example_id!r}: the prepared data is not this comparison's")
        return grams[example_id]

    def clean(self, kind: str, row: dict) -> str:
        if kind == "raw":
            return row["prediction"]
        if kind == "stripped":
            return strip_tags(row["prediction"])
        return uncopied(row["prediction"], self._of("item", row["example_id"]), self.n)[0]

    def copied_share(self, rows: list[dict], source: str = "item", field: str = "prediction") -> float | None:
        """Mean share of the outputs' (or, with field="reference", the references') words copied from the
        item text (source "item") or from the user's past reviews (source "history"); None without prompts."""
        if self.grams is None or not rows:
            return None
        return sum(uncopied(r[field], self._of(source, r["example_id"]), self.n)[1] for r in rows) / len(rows)


def rescore(seeds: dict[str, list[dict]], kind: str, controls: Controls) -> dict[int | None, dict]:
    """{seed (None for a zero-shot run): {"predictions": rows of example_id and METRICS}} on the outputs
    cleaned by `kind`: the shape of a comparison record, for `table.target_scores` and `table.seed_versus`."""
    out = {}
    for seed, rows in seeds.items():
        hyps = [controls.clean(kind, r) for r in rows]
        scores = example_scores(hyps, [r["reference"] for r in rows])
        rows = [{"example_id": r["example_id"], **{m: sc[m] for m in METRICS}}
                for r, sc in zip(rows, scores, strict=True)]
        out[None if seed == "-" else int(seed.removeprefix("seed"))] = {"predictions": rows}
    return out


def length_and_overlap(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """Mean words and ROUGE-1 precision / recall: a longer output gains recall (and METEOR, which weights
    recall 9:1) whether or not its extra words are the user's; precision says whether they are on target."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1"])
    r1 = [scorer.score(ref, hyp)["rouge1"] for hyp, ref in zip(hyps, refs, strict=True)]
    return {"words": sum(len(h.split()) for h in hyps) / len(hyps),
            "rouge1_precision": sum(x.precision for x in r1) / len(r1),
            "rouge1_recall": sum(x.recall for x in r1) / len(r1)}


def echo_counts(rows: list[dict], controls: Controls) -> dict:
    """Per record: outputs opening with / containing a field marker; length, ROUGE-1 precision and recall of
    the raw outputs; with the prompts, the share of words copied from the item text and the same length and
    overlap of what is left once the copies go (`uncopied`)."""
    out = {"outputs": len(rows), "starts_with_a_tag": sum(bool(TAG.match(r["prediction"])) for r in rows),
           "contains_a_tag": sum(bool(TAG.search(r["prediction"])) for r in rows)}
    if not rows:
        return out
    refs = [r["reference"] for r in rows]
    out |= length_and_overlap([r["prediction"] for r in rows], refs)
    out["reference_words"] = sum(len(ref.split()) for ref in refs) / len(refs)
    if "uncopied" in controls.kinds:
        out["copied_share"] = controls.copied_share(rows)
        # the user's phrases reused from their history: the personal signal, which the references carry too
        out["history_copied_share"] = controls.copied_share(rows, "history")
        out["reference_history_copied_share"] = controls.copied_share(rows, "history", "reference")
        out["uncopied"] = length_and_overlap([controls.clean("uncopied", r) for r in rows], refs)
    return out


def compare(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict[str, dict]:
    ids = sorted(a.keys() & b.keys())
    return {m: paired_difference([a[i][m] for i in ids], [b[i][m] for i in ids]) for m in METRICS}


def versus_baseline(runs: dict, base: dict) -> tuple[dict, dict | None]:
    """The paired difference over targets and across matched seeds, over the same targets."""
    ours, theirs = target_scores(runs), target_scores(base)
    return compare(ours, theirs), seed_versus(runs, base, sorted(ours.keys() & theirs.keys()))


def _line(method: str, entry: dict, baseline: str, kinds: tuple[str, ...]) -> str:
    def overlap(c: dict) -> str:
        return (f"{c.get('words', 0):.0f} words, R-1 P {c.get('rouge1_precision', 0):.3f} "
                f"R {c.get('rouge1_recall', 0):.3f}")

    echo = ", ".join(f"{s} {c['starts_with_a_tag']}/{c['outputs']} ({overlap(c)}"
                     + (f"; copied {c['copied_share']:.3f}, from the history {c['history_copied_share']:.3f}, "
                        f"uncopied {overlap(c['uncopied'])}" if "uncopied" in c else "")
                     + ")" for s, c in entry["echo"].items())
    line = f"{method:28s} starts with a tag: {echo}"
    if "vs_baseline_raw" in entry:
        for metric in METRICS:
            line += f"\n    {metric} - {baseline}: " + "; ".join(
                f"{kind} {d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
                + (f" seeds [{x['ci_low']:+.4f}, {x['ci_high']:+.4f}]"
                   if (x := (entry[f"vs_baseline_{kind}_seeds"] or {}).get(metric)) else "")
                for kind in kinds if (d := entry[f"vs_baseline_{kind}"][metric]))
    return line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("comparison/runs"))
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="its compare.* names the methods")
    p.add_argument("--baseline", default="context_sft")
    p.add_argument("--prepared", default="data/prepared",
                   help="folder of the runs' test.parquet (prompts), for `uncopied`; 'none' to skip it")
    p.add_argument("--ngram", type=int, default=8, help="shortest run of item-text words counted as a copy")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/field_echo.json"))
    args = p.parse_args()
    records = load_records(args.runs, method_names(load_params(args.params)))
    if args.baseline not in records:
        raise SystemExit(f"{args.runs}: no record of the baseline {args.baseline!r} (found: {sorted(records)})")
    prompts = None if args.prepared == "none" else load_prompts(Path(args.prepared))
    controls = Controls(prompts, args.ngram)
    base = {kind: rescore(records[args.baseline], kind, controls) for kind in controls.kinds}
    result = {"baseline": args.baseline, "runs": str(args.runs), "controls": list(controls.kinds),
              "ngram": args.ngram, "methods": {}}
    for method, seeds in sorted(records.items()):
        entry = {"echo": {seed: echo_counts(rows, controls) for seed, rows in sorted(seeds.items())}}
        if method != args.baseline:
            for kind in controls.kinds:
                entry[f"vs_baseline_{kind}"], entry[f"vs_baseline_{kind}_seeds"] = versus_baseline(
                    rescore(seeds, kind, controls), base[kind])
        result["methods"][method] = entry
        print(_line(method, entry, args.baseline, controls.kinds))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
