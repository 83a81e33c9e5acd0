"""Load a base model from any of its three sources and write it as a plain transformers folder.

Sources (`model.name_or_path`): `embedded:<name>` (a GGUF file inside an installed package, converted
offline), a local transformers folder, or a Hugging Face Hub id (resolved to a commit, which is
recorded). Every later stage loads the written folder with `local_files_only=True`, so only this
module ever touches the network, and only for a Hub id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nextquill.assets import EMBEDDED_MODEL_FILES, embedded_model_file
from nextquill.config import ModelConfig

log = logging.getLogger(__name__)
SOURCE_FILE = "nextquill_source.json"


class ModelSourceError(ValueError):
    """`model.name_or_path` names nothing loadable; the message says what was tried."""


@dataclass(frozen=True)
class ModelSource:
    spec: str  # model.name_or_path as written in params
    kind: str  # "embedded", "local" or "hub"
    location: str  # the GGUF file, the folder, or the Hub id
    revision: str | None  # Hub commit, or the GGUF file's sha256
    dtype: str
    parameters: int
    transformers: str


# CPU flags of native bf16 arithmetic: x86 AVX512-BF16 or AMX-BF16; Arm's BF16 extension ("bf16" in Features).
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU does bf16 arithmetic in hardware (not by emulation), read from /proc/cpuinfo."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and BF16_FLAGS & set(value.split()):
            return True
    return False


def resolve_dtype(name: str) -> Any:
    """`auto`: bfloat16 on a GPU and on a CPU with native bf16, else float32; the others name a torch dtype.

    On this project's 2-core CPU (AVX512-BF16) bf16 weights ran the training step 1.98x, effect estimation
    1.85x and generation 1.90x faster than float32 (benchmarks/results/precision.json), with the pipeline's
    metrics inside their noise (docs/performance.md); without native bf16 the emulation is slower, so float32.
    """
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() or cpu_has_native_bf16() else torch.float32
    return getattr(torch, name)


def source_kind(cfg: ModelConfig) -> str:
    if cfg.embedded_name is not None:
        return "embedded"
    if Path(cfg.name_or_path).expanduser().is_dir():
        return "local"
    if cfg.looks_like_hub_id(cfg.name_or_path) and not cfg.name_or_path.startswith((".", "/", "~")):
        return "hub"
    raise ModelSourceError(
        f"model.name_or_path = {cfg.name_or_path!r}: not an existing folder, not an embedded model "
        "(embedded:smollm2-135m) and not a Hugging Face Hub id of the form owner/name"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_embedded(name: str, dtype: Any) -> tuple[Any, Any, str, str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_model_file(name)
    folder, filename = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=dtype)
    # A GGUF-loaded model carries its quantizer and refuses save_pretrained ("not serializable"); the
    # weights are already dequantised, so dropping both leaves a plain model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Record the package and file, not the machine's site-packages path.
    return model, tokenizer, f"{EMBEDDED_MODEL_FILES[name][2]}:{filename}", _sha256(gguf)


def _load_pretrained(cfg: ModelConfig, kind: str, dtype: Any) -> tuple[Any, Any, str, str | None]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location, revision = cfg.name_or_path, cfg.revision
    if kind == "hub":
        from huggingface_hub import HfApi

        revision = HfApi().model_info(location, revision=revision).sha  # pin the commit that was used
        local_only = False
    else:
        location, local_only = str(Path(location).expanduser().resolve()), True
        if not (Path(location) / "config.json").is_file():
            raise ModelSourceError(f"{location}: no config.json; expected a transformers model folder")
    common = {"revision": revision, "trust_remote_code": cfg.trust_remote_code, "local_files_only": local_only}
    tokenizer = AutoTokenizer.from_pretrained(location, **common)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, use_safetensors=True, **common)
    return model, tokenizer, location, revision


def export_base_model(cfg: ModelConfig, out: Path) -> ModelSource:
    """Load the configured base model and save it, with tokenizer and chat template, as a folder at `out`."""
    import transformers

    kind = source_kind(cfg)
    dtype = resolve_dtype(cfg.dtype)
    if kind == "embedded":
        model, tokenizer, location, revision = _load_embedded(cfg.embedded_name, dtype)
    else:
        model, tokenizer, location, revision = _load_pretrained(cfg, kind, dtype)
    if tokenizer.pad_token is None:  # batching needs a pad token; eos is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        log.warning("%s has no chat template; prompts will use the plain layout", cfg.name_or_path)
    model.to(dtype).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    source = ModelSource(
        spec=cfg.name_or_path, kind=kind, location=location, revision=revision,
        dtype=str(dtype).removeprefix("torch."), parameters=sum(p.numel() for p in model.parameters()),
        transformers=transformers.__version__,
    )
    (out / SOURCE_FILE).write_text(json.dumps(asdict(source), indent=2) + "\n", encoding="utf-8")
    return source


def inference_device() -> str:
    """Where the no-grad stages (effects, evaluate) run: the first GPU when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(folder: str | Path, dtype: str = "auto") -> tuple[Any, Any]:
    """Load a folder written by `export_base_model` (safetensors only, no remote code, no network)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=resolve_dtype(dtype), local_files_only=True, use_safetensors=True
    )
    return model, tokenizer
