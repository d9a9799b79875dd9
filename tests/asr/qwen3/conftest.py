"""Tiny random Qwen3-ASR checkpoints in the real on-disk layouts, built once per session.

One seeded transformers `Qwen3ASRForConditionalGeneration` is the source of truth. Its
weights are written in the ORIGINAL layout of Qwen/Qwen3-ASR-* (config.json with
`thinker_config`, `thinker.`-prefixed keys, the projector as `audio_tower.proj1/proj2`,
torch conv layout; also sharded) and in mlx-audio's layout (no prefix, MLX conv layout;
float, 8-bit and 4-bit decoders as mlx-community publishes). All hold the same numbers.
Every folder carries a tokenizer (vocab.json + merges.txt + tokenizer_config.json) whose
special tokens sit at the ids the tiny config names. torch and transformers are test-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.asr.qwen3.tokenizer_fixture import write_qwen_tokenizer

AUDIO = dict(num_mel_bins=128, d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64,
             downsample_hidden_size=8, output_dim=64, n_window=50, n_window_infer=800,
             max_source_positions=1500)  # fmt: skip
TEXT = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
            tie_word_embeddings=True, max_position_embeddings=4096)  # fmt: skip
SPECIAL = {"<|endoftext|>": 1000, "<|im_start|>": 1001, "<|im_end|>": 1002, "<|audio_start|>": 1003,
           "<|audio_end|>": 1004, "<|audio_pad|>": 1005, "<asr_text>": 1006}  # fmt: skip
IDS = {"audio_token_id": SPECIAL["<|audio_pad|>"], "audio_start_token_id": SPECIAL["<|audio_start|>"],
       "audio_end_token_id": SPECIAL["<|audio_end|>"]}  # fmt: skip


def original_config() -> dict:
    """The published config.json's structure, cut to the tiny sizes."""
    return {
        "architectures": ["Qwen3ASRForConditionalGeneration"],
        "model_type": "qwen3_asr",
        "support_languages": ["Chinese", "English", "Cantonese", "French", "German"],
        "thinker_config": {
            "model_type": "qwen3_asr_thinker",
            "audio_config": {**AUDIO, "model_type": "qwen3_asr_audio_encoder", "activation_function": "gelu",
                             "conv_chunksize": 500, "scale_embedding": False},
            "text_config": {**TEXT, "model_type": "qwen3_asr_text", "hidden_act": "silu", "attention_bias": False,
                            "rope_scaling": {"interleaved": True, "mrope_interleaved": True,
                                             "mrope_section": [4, 2, 2], "rope_type": "default",
                                             "type": "default"}},
            **IDS,
        },
        "torch_dtype": "float32",
    }  # fmt: skip


def tiny_hf_config():
    from transformers import Qwen3ASRConfig

    return Qwen3ASRConfig(
        audio_config=dict(AUDIO), text_config={**TEXT, "rope_parameters": {"rope_type": "default",
                                                                           "rope_theta": TEXT["rope_theta"]}},
        audio_token_id=IDS["audio_token_id"], pad_token_id=SPECIAL["<|im_end|>"],
        eos_token_id=[SPECIAL["<|endoftext|>"], SPECIAL["<|im_end|>"]], tie_word_embeddings=True,
    )  # fmt: skip


def hf_to_original(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers' key names → the original checkpoint's."""
    out = {}
    for key, value in state.items():
        if key.startswith("model.audio_tower."):
            name = "thinker.audio_tower." + key[len("model.audio_tower."):]
        elif key.startswith("model.multi_modal_projector.linear_"):
            n = key[len("model.multi_modal_projector.linear_")]
            name = f"thinker.audio_tower.proj{n}." + key.rsplit(".", 1)[1]
        elif key.startswith("model.language_model."):
            name = "thinker.model." + key[len("model.language_model."):]
        elif key == "lm_head.weight":
            name = "thinker.lm_head.weight"
        else:
            raise KeyError(key)
        out[name] = value
    return out


def original_to_mlx(original: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """mlx-audio's sanitize: drop `thinker.` and the tied head, convs to (out, h, w, in)."""
    out = {}
    for key, value in original.items():
        name = key.removeprefix("thinker.")
        if name == "lm_head.weight":
            continue
        if name.startswith("audio_tower.conv2d") and name.endswith(".weight"):
            value = value.transpose(0, 2, 3, 1)
        out[name] = value
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    import mlx.core as mx

    mx.save_safetensors(str(path), {k: mx.array(v) for k, v in tensors.items()})


def quantize_mlx(tensors: dict[str, np.ndarray], bits: int, group_size: int = 64) -> dict:
    """The decoder's Linear layers and embeddings MLX-quantized, as mlx_lm.convert does
    with mlx-audio's predicate (the audio tower stays float)."""
    import mlx.core as mx

    out = {}
    for key, value in tensors.items():
        base = key[: -len(".weight")]
        quantizable = (key.startswith("model.") and key.endswith(".weight") and value.ndim == 2
                       and value.shape[-1] % group_size == 0)  # fmt: skip
        if not quantizable:
            out[key] = mx.array(value)
            continue
        w, s, b = mx.quantize(mx.array(value), group_size=group_size, bits=bits)
        out[key], out[base + ".scales"], out[base + ".biases"] = w, s, b
    return out


@pytest.fixture(scope="session")
def hf_qwen3_model():
    """A seeded random `Qwen3ASRForConditionalGeneration` (eval, float32, eager attention)."""
    torch = pytest.importorskip("torch")
    from transformers import Qwen3ASRForConditionalGeneration

    torch.manual_seed(0)
    config = tiny_hf_config()
    config._attn_implementation = "eager"
    model = Qwen3ASRForConditionalGeneration(config).eval()
    with torch.no_grad():  # random init is small and biases zero: widen it, randomise them
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.05)
            else:
                p.mul_(3.0)
    return model


@pytest.fixture(scope="session")
def hf_qwen3_state(hf_qwen3_model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in hf_qwen3_model.state_dict().items()}


def _with_tokenizer(folder: Path) -> Path:
    write_qwen_tokenizer(folder, TEXT["vocab_size"], SPECIAL)
    return folder


@pytest.fixture(scope="session")
def qwen3_original(tmp_path_factory, hf_qwen3_state) -> Path:
    folder = tmp_path_factory.mktemp("qwen3_original")
    (folder / "config.json").write_text(json.dumps(original_config(), indent=2))
    write_safetensors(folder / "model.safetensors", hf_to_original(hf_qwen3_state))
    return _with_tokenizer(folder)


@pytest.fixture(scope="session")
def qwen3_original_sharded(tmp_path_factory, hf_qwen3_state) -> Path:
    folder = tmp_path_factory.mktemp("qwen3_sharded")
    (folder / "config.json").write_text(json.dumps(original_config(), indent=2))
    original = hf_to_original(hf_qwen3_state)
    names = sorted(original)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    weight_map = {}
    for file, keys in shards.items():
        write_safetensors(folder / file, {k: original[k] for k in keys})
        weight_map.update({k: file for k in keys})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return _with_tokenizer(folder)


def _mlx_folder(tmp_path_factory, state, name: str, bits: int | None, flat: bool) -> Path:
    import mlx.core as mx

    folder = tmp_path_factory.mktemp(name)
    config = original_config()
    if flat:  # mlx-audio's ModelConfig fields at the top level
        thinker = config.pop("thinker_config")
        config.update(audio_config=thinker["audio_config"], text_config=thinker["text_config"], **IDS)
    tensors = original_to_mlx(hf_to_original(state))
    if bits is None:
        mx.save_safetensors(str(folder / "model.safetensors"), {k: mx.array(v) for k, v in tensors.items()})
    else:
        config["quantization"] = {"group_size": 64, "bits": bits}
        mx.save_safetensors(str(folder / "model.safetensors"), quantize_mlx(tensors, bits))
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return _with_tokenizer(folder)


@pytest.fixture(scope="session")
def qwen3_mlx(tmp_path_factory, hf_qwen3_state) -> Path:
    return _mlx_folder(tmp_path_factory, hf_qwen3_state, "qwen3_mlx", None, flat=True)


@pytest.fixture(scope="session")
def qwen3_mlx_8bit(tmp_path_factory, hf_qwen3_state) -> Path:
    return _mlx_folder(tmp_path_factory, hf_qwen3_state, "qwen3_mlx8", 8, flat=False)


@pytest.fixture(scope="session")
def qwen3_mlx_4bit(tmp_path_factory, hf_qwen3_state) -> Path:
    return _mlx_folder(tmp_path_factory, hf_qwen3_state, "qwen3_mlx4", 4, flat=True)
