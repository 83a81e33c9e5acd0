"""MLflow "models from code" file: the base model plus the LoRA adapter (or a whole fine-tuned model) as pyfunc.

`nextquill.mlops.registry` logs this file with `mlflow.pyfunc.log_model(python_model=<this path>, artifacts=...)`;
MLflow copies it into the model and executes it at load time, so it must not be imported by the package.
Artifacts: `adapter` (peft adapter or whole model folder) and `config` (JSON: `base_uri`, where the shared
base model is stored; max_new_tokens, repetition_penalty, repetition_scope, history_k, max_prompt_tokens,
empty_history; the request limits rating_range, max_new_tokens_limit, max_request_rows, max_request_chars). Why not
`mlflow.transformers`: with a peft model it silently saves LoRA-keyed weights as base weights (docs/setup.md).
Prompts are rendered by `nextquill.data.prompts`, so the serving environment needs the nextquill package.
"""

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class NextQuillModel(PythonModel):
    """Greedy review generation (repetition penalty 1.2) from a prompt or from history + item fields."""

    def load_context(self, context) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # Every setting comes from the params the model was registered with (`serving.json`); none is written here.
        self.config = json.loads(Path(context.artifacts["config"]).read_text())
        adapter = Path(context.artifacts["adapter"])
        if "base_uri" in self.config:  # the base is stored once in the tracking store, shared by the versions
            base = Path(mlflow.artifacts.download_artifacts(self.config["base_uri"]))
        else:  # a version registered before the shared store carries its own copy
            base = Path(context.artifacts["base"])
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

    def build_prompt(self, row) -> str:
        """A checked row's prompt: as given, or the training prompt layout rendered from its fields."""
        from nextquill.data.prompts import fit_history, render_prompt
        from nextquill.data.schema import REVIEW_SYSTEM, HistoryEntry, Target

        if row.prompt is not None:
            return row.prompt
        target = Target(example_id="serving", user_id="", split="test", category="", item_id="",
                        query=(("Item Title", row.item_title), ("Item Description", row.item_description)),
                        question=row.question, target="", history=(), system=REVIEW_SYSTEM)
        cfg, tok = self.config, self.tokenizer
        if not row.history:
            return render_prompt(tok, target, None, cfg["empty_history"])
        entries = [HistoryEntry(fields=fields) for fields in row.history]
        base = len(tok(render_prompt(tok, target, [], cfg["empty_history"]), add_special_tokens=False)["input_ids"])
        return fit_history(tok, target, entries, cfg["history_k"], cfg["max_prompt_tokens"], base)[1]

    def generate(self, prompt: str, max_new_tokens: int) -> str:
        import torch

        from nextquill.model.generation import Decoding, penalty_kwargs

        tok = self.tokenizer
        ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
        # Versions registered before the scope existed decoded with the prompt counted: they keep doing so.
        decoding = Decoding(max_new_tokens=max_new_tokens, repetition_penalty=float(self.config["repetition_penalty"]),
                            do_sample=False, temperature=1.0, top_p=1.0,
                            repetition_scope=self.config.get("repetition_scope", "all"))
        out = self.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            **penalty_kwargs(decoding, ids.shape[1]),
        )
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    # The DataFrame hint tells MLflow not to infer a schema from it. The model has no input schema (MLflow would
    # silently drop unknown fields and answer [] to a request that has none it knows): `inputs` checks each row.
    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[str]:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from nextquill.mlops.requests import Limits, RequestError, check_request, max_new_tokens

        limits = Limits.from_config(self.config)
        try:  # the request is checked whole before any decoding: a bad row costs no compute
            n_tokens = max_new_tokens(params, int(self.config["max_new_tokens"]), limits)
            rows = check_request(model_input, limits)
        except RequestError as err:  # the scoring server answers 400 with this message, not a stack trace
            raise MlflowException(f"invalid request: {err}", error_code=INVALID_PARAMETER_VALUE) from None
        return [self.generate(self.build_prompt(row), n_tokens) for row in rows]


mlflow.models.set_model(NextQuillModel())
