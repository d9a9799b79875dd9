"""Loading through the engine: quantized downloads on CPU, model names, errors."""

import mlx.core as mx
import numpy as np
import pytest

from asr.base import ModelNotFoundError
from asr.whisper.engine import WhisperEngine, resolve_whisper
from asr.whisper.weights import build_model, dequantized, load_checkpoint

from ..audio_util import espeak_clips


@pytest.mark.parametrize("bits", [4, 8])
def test_quantized_checkpoints_are_expanded_on_cpu_with_the_same_logits(bits, mlx_tiny_q4_dir, mlx_tiny_q8_dir):
    folder = mlx_tiny_q4_dir if bits == 4 else mlx_tiny_q8_dir
    ckpt = load_checkpoint(folder)
    quantized = build_model(ckpt)
    expanded = build_model(dequantized(ckpt))
    assert not any(k.endswith(".scales") for k in dequantized(ckpt).weights)
    mel = mx.array(np.random.default_rng(0).standard_normal((1, 3000, 80)).astype(np.float32))
    tokens = mx.array([[50257, 50363, 383, 2068]])
    np.testing.assert_allclose(np.array(expanded(mel, tokens)), np.array(quantized(mel, tokens)), atol=2e-3)


def test_engine_loads_a_quantized_folder_and_transcribes(mlx_tiny_q4_dir):
    engine = WhisperEngine(str(mlx_tiny_q4_dir))
    d = engine.decoder
    assert d._np is not None  # the CPU decoder step is used: weights are float32 again
    from asr.whisper.decoding import DecodingOptions

    audio = espeak_clips()[0][1]
    r = d.decode(d.encode([audio]), DecodingOptions(temperatures=(0.0,)), [3.0])[0]
    assert isinstance(r.text, str)


def test_model_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_whisper(None).name == "model"  # the bundled tiny.en folder
    assert resolve_whisper(str(tmp_path)) == tmp_path
    with pytest.raises(ModelNotFoundError, match="unknown Whisper model"):
        resolve_whisper("gigantic")
    with pytest.raises(ModelNotFoundError):
        resolve_whisper("base.en", cache_dir=tmp_path)  # not cached and the hub is off
