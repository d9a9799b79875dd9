"""Voxtral Realtime checkpoints in every layout load to the same weights and logits.

The reference is the tiny random transformers model of conftest.py; the original Mistral
layout is written from it by inverting transformers' converter, mlx-audio's by renaming.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from asr.base import ASRError, ModelNotFoundError
from asr.voxtral.config import VoxtralConfig
from asr.voxtral.model import VoxtralRealtime
from asr.voxtral.weights import build_model, dequantized, hf_to_ours, load_checkpoint
from tests.asr.voxtral.conftest import (
    DEC,
    ENC,
    TINY_PARAMS,
    mlx_audio_config,
    permute_for_rope,
    tiny_hf_config,
)

FLOAT_LAYOUTS = ("transformers", "transformers_sharded", "original", "mlx")
TOKENS = [[1] + [32] * 10 + [700, 513, 900, 1000, 1023, 2, 40]]
# Relative logit error of a quantized tiny model against the float one. Random Gaussian
# weights are the worst case for group-wise quantization (measured: 4-bit 0.36-0.40, 8-bit
# 0.026); the exact check is that quantized logits equal those of the dequantized weights.
QUANTIZATION_ERROR = {4: 0.6, 8: 0.05}


def numpy_weights(checkpoint) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in checkpoint.weights.items()}


def assert_one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def mel():
    rng = np.random.default_rng(7)
    return mx.array(rng.standard_normal((1, 8 * len(TOKENS[0]), 128)).astype(np.float32))


@pytest.fixture(scope="module")
def float_logits(voxtral_dirs, mel) -> np.ndarray:
    return logits_of(build_model(load_checkpoint(voxtral_dirs["original"])), mel)


def logits_of(model: VoxtralRealtime, mel: mx.array) -> np.ndarray:
    return np.array(model(mel, mx.array(TOKENS), 6.0))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_product_modules_load_no_test_only_library():
    """torch and transformers are test-only; mlx_lm's package import would load both."""
    code = ("import sys, asr.voxtral.weights, asr.voxtral.model\n"
            "print(sorted(m for m in ('torch', 'transformers', 'mlx_lm') if m in sys.modules))")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]"]


# --- configs ------------------------------------------------------------------------------


def test_the_three_config_formats_describe_one_model(voxtral_dirs):
    configs = {name: load_checkpoint(voxtral_dirs[name]).config
               for name in ("original", "transformers", "mlx")}  # fmt: skip
    expected = VoxtralConfig.from_params(TINY_PARAMS)
    for name, config in configs.items():
        assert config == expected, name
    assert expected.encoder.sliding_window == ENC["sliding_window"]
    assert expected.decoder.n_kv_heads == DEC["n_kv_heads"]
    assert expected.downsample_factor == 4 and expected.mel_frames_per_token == 8
    assert expected.samples_per_token == 1280


def test_delay_tokens_follow_mistral_common():
    config = VoxtralConfig.from_params(TINY_PARAMS)
    assert [config.delay_tokens(ms) for ms in (80, 160, 480, 2400)] == [1, 2, 6, 30]


def test_mlx_audio_config_keeps_delay_and_defaults():
    raw = mlx_audio_config()
    raw["transcription_delay_ms"] = 480
    del raw["decoder"]["tied_embeddings"]  # mlx-audio's default applies
    config = VoxtralConfig.from_mlx_audio(raw)
    assert config.transcription_delay_ms == 480 and config.decoder.tied_embeddings


def test_transformers_config_reads_rope_from_either_spelling():
    cfg = tiny_hf_config().to_dict()
    assert VoxtralConfig.from_transformers(cfg).encoder.rope_theta == ENC["rope_theta"]
    legacy = json.loads(json.dumps(cfg))
    for section in ("text_config", "audio_config"):
        legacy[section]["rope_theta"] = legacy[section].pop("rope_parameters")["rope_theta"]
    assert VoxtralConfig.from_transformers(legacy) == VoxtralConfig.from_transformers(cfg)


# --- the three layouts ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", FLOAT_LAYOUTS)
def test_float_layouts_load_the_expected_weights(voxtral_dirs, voxtral_expected, layout):
    ckpt = load_checkpoint(voxtral_dirs[layout])
    assert ckpt.layout == layout.split("_")[0]
    assert ckpt.quantization is None
    assert ckpt.tokenizer_file == voxtral_dirs[layout] / "tekken.json"
    got = numpy_weights(ckpt)
    assert got.keys() == voxtral_expected.keys()
    for name, value in voxtral_expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_original_fixture_is_what_the_hf_converter_converts(original_state, hf_voxtral_state):
    """Our inverse of permute_for_rope, applied forward again with the converter's own
    formula, gives back transformers' q/k weights and q bias exactly."""
    enc = "mm_streams_embeddings.embedding_module.whisper_encoder.transformer.layers"
    pairs = [
        (f"{enc}.0.attention.wq.weight", "model.audio_tower.layers.0.self_attn.q_proj.weight",
         ENC["n_heads"]),
        (f"{enc}.1.attention.wq.bias", "model.audio_tower.layers.1.self_attn.q_proj.bias", ENC["n_heads"]),
        ("layers.1.attention.wk.weight", "model.language_model.layers.1.self_attn.k_proj.weight",
         DEC["n_kv_heads"]),
        ("layers.0.attention.wq.weight", "model.language_model.layers.0.self_attn.q_proj.weight",
         DEC["n_heads"]),
    ]
    for original, hf, heads in pairs:
        np.testing.assert_array_equal(permute_for_rope(original_state[original], heads), hf_voxtral_state[hf])
        assert not np.array_equal(original_state[original], hf_voxtral_state[hf])  # really permuted


def test_hf_names_on_disk_and_in_memory_map_alike():
    gate = "layers.3.feed_forward.w1.weight"
    assert hf_to_ours("language_model.model.layers.3.mlp.gate_proj.weight") == gate
    assert hf_to_ours("model.language_model.layers.3.mlp.gate_proj.weight") == gate
    assert hf_to_ours("audio_tower.layers.0.self_attn.o_proj.bias") == (
        "whisper_encoder.transformer.layers.0.attention.wo.bias")
    assert hf_to_ours("language_model.lm_head.weight") == "lm_head.weight"


def test_bf16_original_is_cast_on_load(voxtral_dirs, voxtral_expected):
    ckpt = load_checkpoint(voxtral_dirs["original_bf16"])
    assert all(v.dtype == mx.float32 for v in ckpt.weights.values())
    kept = load_checkpoint(voxtral_dirs["original_bf16"], dtype=None)
    assert kept.weights["norm.weight"].dtype == mx.bfloat16
    for name, value in numpy_weights(ckpt).items():
        np.testing.assert_allclose(value, voxtral_expected[name], rtol=2**-7, atol=1e-6, err_msg=name)


def test_float_layouts_give_identical_logits(voxtral_dirs, mel, float_logits):
    for layout in FLOAT_LAYOUTS:
        model = build_model(load_checkpoint(voxtral_dirs[layout]))
        np.testing.assert_array_equal(logits_of(model, mel), float_logits, err_msg=layout)


def test_bf16_logits_are_close(voxtral_dirs, mel, float_logits):
    got = logits_of(build_model(load_checkpoint(voxtral_dirs["original_bf16"])), mel)
    assert relative_error(got, float_logits) < 0.02


def test_bf16_weights_kept_compute_in_bf16(voxtral_dirs, mel, float_logits):
    model = build_model(load_checkpoint(voxtral_dirs["original_bf16"], dtype=None))
    assert model.dtype == mx.bfloat16
    frames = model.encode(mel)
    hidden = model.decode(frames + model.embed(mx.array(TOKENS)), model.make_caches(), model.ada_scales(6))
    assert frames.dtype == hidden.dtype == mx.bfloat16
    got = np.array(model.logits(hidden).astype(mx.float32))
    assert relative_error(got, float_logits) < 0.05


# --- quantized -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout,bits", [("mlx_q4", 4), ("mlx_q8", 8), ("mlx_q4_old", 4)])
def test_quantized_mlx_layouts(voxtral_dirs, voxtral_expected, mel, float_logits, layout, bits):
    ckpt = load_checkpoint(voxtral_dirs[layout])
    assert ckpt.layout == "mlx"
    assert ckpt.quantization == {"group_size": 64, "bits": bits, "mode": "affine"}
    model = build_model(ckpt)
    embedding_quantized = layout != "mlx_q4_old"
    assert isinstance(model.tok_embeddings, nn.QuantizedEmbedding) == embedding_quantized
    assert isinstance(model.layers[0].attention.wq, nn.QuantizedLinear)
    assert not isinstance(model.layers[0].ada_rms_norm_t_cond[2], nn.QuantizedLinear)  # 32 wide
    got = logits_of(model, mel)
    # Exactly the dequantized weights' logits, and close to the float model's.
    plain = dequantized(ckpt)
    assert plain.quantization is None and plain.weights.keys() == voxtral_expected.keys()
    np.testing.assert_allclose(logits_of(build_model(plain), mel), got, atol=1e-4, rtol=1e-4)
    assert relative_error(got, float_logits) < QUANTIZATION_ERROR[bits]


def test_old_conversion_gets_its_embeddings_quantized_on_load(voxtral_dirs, mel, float_logits):
    model = build_model(load_checkpoint(voxtral_dirs["mlx_q4_old"]), quantize_bits=4)
    assert isinstance(model.tok_embeddings, nn.QuantizedEmbedding)
    assert isinstance(model.audio_language_projection[0], nn.QuantizedLinear)
    assert relative_error(logits_of(model, mel), float_logits) < QUANTIZATION_ERROR[4]


@pytest.mark.parametrize("bits", [4, 8])
def test_quantize_on_load_covers_the_embeddings(voxtral_dirs, mel, float_logits, bits):
    model = build_model(load_checkpoint(voxtral_dirs["transformers"]), quantize_bits=bits)
    assert isinstance(model.tok_embeddings, nn.QuantizedEmbedding)
    assert model.tok_embeddings.bits == bits
    for linear in (model.layers[1].feed_forward.w2, model.whisper_encoder.transformer.layers[0].attention.wo,
                   model.audio_language_projection[2]):  # fmt: skip
        assert isinstance(linear, nn.QuantizedLinear) and linear.bits == bits
    # The AdaRMSNorm projections run once per delay and stay float.
    assert not isinstance(model.layers[0].ada_rms_norm_t_cond[0], nn.QuantizedLinear)
    assert relative_error(logits_of(model, mel), float_logits) < QUANTIZATION_ERROR[bits]


def test_same_quantization_from_any_layout(voxtral_dirs, mel):
    a = logits_of(build_model(load_checkpoint(voxtral_dirs["original"]), quantize_bits=4), mel)
    b = logits_of(build_model(load_checkpoint(voxtral_dirs["mlx"]), quantize_bits=4), mel)
    np.testing.assert_array_equal(a, b)


def test_unsupported_bits_are_one_line(voxtral_dirs):
    with pytest.raises(ASRError) as e:
        build_model(load_checkpoint(voxtral_dirs["mlx"]), quantize_bits=7)
    assert "4 or 8" in assert_one_line(e)


# --- bad folders ------------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ModelNotFoundError) as e:
        load_checkpoint(tmp_path / "nope")
    assert "no model folder" in assert_one_line(e)
    with pytest.raises(ModelNotFoundError) as e:
        load_checkpoint(tmp_path)
    assert "no Voxtral Realtime model" in assert_one_line(e)


def test_other_models_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper", "d_model": 4}))
    with pytest.raises(ModelNotFoundError) as e:
        load_checkpoint(tmp_path)
    assert "whisper" in assert_one_line(e)


def test_params_without_weights(voxtral_dirs, tmp_path):
    folder = _copy(voxtral_dirs["original"], tmp_path / "m")
    (folder / "consolidated.safetensors").unlink()
    with pytest.raises(ModelNotFoundError) as e:
        load_checkpoint(folder)
    assert "consolidated.safetensors" in assert_one_line(e)


def test_config_without_weights(voxtral_dirs, tmp_path):
    folder = _copy(voxtral_dirs["mlx"], tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError) as e:
        load_checkpoint(folder)
    assert "has no weights" in assert_one_line(e)


def test_missing_shard(voxtral_dirs, tmp_path):
    folder = _copy(voxtral_dirs["transformers_sharded"], tmp_path / "m")
    shard = max(folder.glob("model-*.safetensors"))
    shard.unlink()
    with pytest.raises(ModelNotFoundError) as e:
        load_checkpoint(folder)
    assert shard.name in assert_one_line(e)


def test_corrupt_json_and_weights(voxtral_dirs, tmp_path):
    folder = _copy(voxtral_dirs["original"], tmp_path / "a")
    (folder / "params.json").write_text("{not json")
    with pytest.raises(ASRError) as e:
        load_checkpoint(folder)
    assert "not valid JSON" in assert_one_line(e)
    folder = _copy(voxtral_dirs["original"], tmp_path / "b")
    data = (folder / "consolidated.safetensors").read_bytes()
    (folder / "consolidated.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ASRError) as e:
        load_checkpoint(folder)
    assert "cannot read" in assert_one_line(e)


def test_config_lacking_a_field(voxtral_dirs, tmp_path):
    folder = _copy(voxtral_dirs["original"], tmp_path / "m")
    params = json.loads((folder / "params.json").read_text())
    del params["multimodal"]["whisper_model_args"]["encoder_args"]["sliding_window"]
    (folder / "params.json").write_text(json.dumps(params))
    with pytest.raises(ASRError) as e:
        load_checkpoint(folder)
    assert "sliding_window" in assert_one_line(e)


def _rewrite_weights(path: Path, change) -> None:
    weights = dict(mx.load(str(path)))
    change(weights)
    mx.save_safetensors(str(path), weights)


def test_missing_extra_and_misshapen_tensors(voxtral_dirs, tmp_path):
    key = "layers.1.feed_forward.w3.weight"
    cases = [
        (lambda w: w.pop(key), ModelNotFoundError, "incomplete: no weight for " + key),
        (lambda w: w.__setitem__("layers.9.ffn_norm.weight", mx.ones(64)), ASRError, "does not use"),
        (lambda w: w.__setitem__(key, mx.ones((3, 3))), ASRError, "has shape (3, 3)"),
    ]
    for i, (change, error, text) in enumerate(cases):
        folder = _copy(voxtral_dirs["original"], tmp_path / str(i))
        _rewrite_weights(folder / "consolidated.safetensors", change)
        with pytest.raises(error) as e:
            load_checkpoint(folder)
        assert text in assert_one_line(e)


def test_separate_output_head_is_refused(voxtral_dirs, tmp_path):
    folder = _copy(voxtral_dirs["original"], tmp_path / "m")
    _rewrite_weights(folder / "consolidated.safetensors",
                     lambda w: w.__setitem__("output.weight", mx.zeros((DEC["vocab_size"], DEC["dim"]))))
    with pytest.raises(ASRError) as e:
        load_checkpoint(folder)
    assert "output projection" in assert_one_line(e)


def test_quantized_weights_without_settings(voxtral_dirs, tmp_path):
    folder = _copy(voxtral_dirs["mlx_q4"], tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    del config["quantization"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ASRError) as e:
        load_checkpoint(folder)
    assert "quantization" in assert_one_line(e)
