"""MLflow "models from code" file: the base model plus the LoRA adapter (or a whole fine-tuned model) as pyfunc.

`nextquill.registry` logs this file with `mlflow.pyfunc.log_model(python_model=<this path>, artifacts=...)`;
MLflow copies it into the model and executes it at load time, so it must not be imported by the package.
Artifacts: `base` (transformers folder), `adapter` (peft adapter or whole model folder), `config` (JSON:
max_new_tokens, repetition_penalty, history_k, max_prompt_tokens, empty_history). Why not
`mlflow.transformers`: with a peft model it silently saves LoRA-keyed weights as base weights (platform.md 5.3).
Prompts are rendered by `nextquill.data.prompts`, so the serving environment needs the nextquill package.
"""

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

DEFAULTS = {"max_new_tokens": 128, "repetition_penalty": 1.2, "history_k": 8, "max_prompt_tokens": 768,
            "empty_history": "None"}


def _missing(value: Any) -> bool:
    """None, NaN and empty strings count as absent (pandas fills absent columns with NaN or None)."""
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value)


# History entries may be plain review texts, or JSON objects with these keys (the layout training used).
ENTRY_FIELDS = (("item_title", "Item Title"), ("item_description", "Item Description"), ("rating", "Review Rating"),
                ("title", "Review Title"), ("text", "Review Text"))


def _entry_fields(item: str) -> tuple[tuple[str, str], ...]:
    if item.lstrip().startswith("{"):
        try:
            obj = json.loads(item)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and not _missing(obj.get("text")):
            return tuple((label, str(obj[key])) for key, label in ENTRY_FIELDS if not _missing(obj.get(key)))
    return (("Review Text", item),)


def _records(model_input) -> list[dict]:
    if hasattr(model_input, "to_dict"):  # a pandas DataFrame
        return model_input.to_dict(orient="records")
    if isinstance(model_input, dict):
        return [model_input]
    if isinstance(model_input, str):
        return [{"prompt": model_input}]
    return [row if isinstance(row, dict) else {"prompt": row} for row in model_input]


class NextQuillModel(PythonModel):
    """Greedy review generation (repetition penalty 1.2) from a prompt or from history + item fields."""

    def load_context(self, context) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config_file = context.artifacts.get("config")
        self.config = {**DEFAULTS, **(json.loads(Path(config_file).read_text()) if config_file else {})}
        base, adapter = Path(context.artifacts["base"]), Path(context.artifacts["adapter"])
        options = {"local_files_only": True, "use_safetensors": True}
        if (adapter / "adapter_config.json").is_file():
            from peft import PeftModel

            model = AutoModelForCausalLM.from_pretrained(base, **options)
            model = PeftModel.from_pretrained(model, adapter)
        else:  # full fine-tuning saved a whole model folder
            model = AutoModelForCausalLM.from_pretrained(adapter, **options)
        tokenizer_dir = adapter if (adapter / "tokenizer_config.json").is_file() else base
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        self.model = model.eval()

    def build_prompt(self, row: dict) -> str:
        """`row["prompt"]` as is, or the training prompt layout rendered from history and item fields."""
        from nextquill.data.prompts import fit_history, render_prompt
        from nextquill.data.schema import REVIEW_SYSTEM, HistoryEntry, Target

        if not _missing(row.get("prompt")):
            return str(row["prompt"])
        if _missing(row.get("item_title")):
            raise ValueError("each input row needs `prompt`, or `item_title` (with `history`, `item_description`)")
        history = row.get("history")
        history = [] if history is None or (isinstance(history, float) and history != history) else history
        history = [history] if isinstance(history, str) else [str(h) for h in history if not _missing(h)]
        question = tuple((label, str(row[key])) for label, key in
                         (("Output Review Rating", "rating"), ("Output Review Title", "review_title"))
                         if not _missing(row.get(key)))
        description = "" if _missing(row.get("item_description")) else str(row["item_description"])
        target = Target(example_id="serving", user_id="", split="test", category="", item_id="",
                        query=(("Item Title", str(row["item_title"])), ("Item Description", description)),
                        question=question, target="", history=(), system=REVIEW_SYSTEM)
        cfg, tok = self.config, self.tokenizer
        if not history:
            return render_prompt(tok, target, None, cfg["empty_history"])
        entries = [HistoryEntry(fields=_entry_fields(item)) for item in history]
        base = len(tok(render_prompt(tok, target, [], cfg["empty_history"]), add_special_tokens=False)["input_ids"])
        return fit_history(tok, target, entries, cfg["history_k"], cfg["max_prompt_tokens"], base)[1]

    def generate(self, prompt: str, max_new_tokens: int) -> str:
        import torch

        tok = self.tokenizer
        ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
        out = self.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
            repetition_penalty=float(self.config["repetition_penalty"]),
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        )
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    # The DataFrame hint tells MLflow not to infer a schema from it; the logged signature does the validation.
    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[str]:
        max_new_tokens = int((params or {}).get("max_new_tokens") or self.config["max_new_tokens"])
        return [self.generate(self.build_prompt(row), max_new_tokens) for row in _records(model_input)]


mlflow.models.set_model(NextQuillModel())
