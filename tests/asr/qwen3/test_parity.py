"""Numerical parity with transformers' `qwen3_asr` on a tiny random config: the same weights,
written in the original layout and loaded by our loader, against the reference model."""

from __future__ import annotations

import numpy as np
import pytest

from asr.runtime import kernels
from asr.qwen3.decoding import features
from asr.qwen3.weights import build_model, load_checkpoint
from tests.asr.qwen3.conftest import SPECIAL

torch = pytest.importorskip("torch")

PAD = SPECIAL["<|audio_pad|>"]


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise with a little structure: a swept tone under it, so the mel is not flat."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


def _reference_inputs(mel: np.ndarray):
    """transformers' encoder input: (1, mels, frames) padded to whole chunks, and its mask."""
    frames = mel.shape[0]
    padded = -(-frames // 100) * 100
    feats = np.zeros((1, mel.shape[1], padded), np.float32)
    feats[0, :, :frames] = mel.T
    mask = np.zeros((1, padded), np.int64)
    mask[0, :frames] = 1
    return torch.tensor(feats), torch.tensor(mask)


@pytest.fixture(scope="module")
def ours(qwen3_original):
    return build_model(load_checkpoint(qwen3_original))


@pytest.fixture(params=[True, False], ids=["numpy-kernels", "mlx-ops"])
def cpu_kernels(request):
    kernels.set_cpu_kernels(request.param)
    yield request.param
    kernels.set_cpu_kernels(None)


def test_features_match_the_reference_extractor():
    from transformers.models.qwen3_asr.feature_extraction_qwen3_asr import Qwen3ASRFeatureExtractor

    audio = _audio(3.21)
    ref = Qwen3ASRFeatureExtractor()(audio, sampling_rate=16000, padding="longest", return_tensors="np",
                                     return_attention_mask=True)
    mine = features(audio, 128)
    frames = int(ref["attention_mask"].sum())
    assert mine.shape == (frames, 128)
    assert np.abs(mine - ref["input_features"][0, :, :frames].T).max() < 1e-4


@pytest.mark.parametrize("seconds", [1.0, 1.37, 4.5, 10.37, 17.0])
def test_encoder_matches_transformers(ours, hf_qwen3_model, cpu_kernels, seconds):
    import mlx.core as mx

    mel = features(_audio(seconds, seed=int(seconds * 100)), 128)
    got = np.array(ours.encode(mx.array(mel)))
    feats, mask = _reference_inputs(mel)
    with torch.no_grad():
        ref = hf_qwen3_model.model.get_audio_features(feats, mask, return_dict=True).pooler_output.numpy()
    assert got.shape == ref.shape  # 13 tokens a second; 10.37 s spans two attention windows
    assert np.abs(got - ref).max() < 1e-4


def test_a_lone_short_chunk_is_not_padded_as_in_the_original(ours, hf_qwen3_model):
    """Under 1 s there is one chunk shorter than 100 frames. The original implementation
    (QwenLM/Qwen3-ASR, and mlx-audio) convolves it unpadded; transformers' port pads it to
    100 frames, which changes its last tokens through the conv biases. We follow the
    original: the reference here is transformers' own modules run on the unpadded chunk."""
    import mlx.core as mx
    import torch.nn.functional as F

    mel = features(_audio(0.73), 128)  # the 0.5 s minimum is padded first: 73 frames
    got = np.array(ours.encode(mx.array(mel)))
    tower, proj = hf_qwen3_model.model.audio_tower, hf_qwen3_model.model.multi_modal_projector
    with torch.no_grad():
        x = torch.tensor(mel.T)[None, None]
        for conv in (tower.conv2d1, tower.conv2d2, tower.conv2d3):
            x = F.gelu(conv(x))
        b, c, f, t = x.shape
        h = tower.conv_out(x.permute(0, 3, 1, 2).reshape(b, t, c * f))[0]
        h = h + tower.positional_embedding.positional_embedding[:t]
        cu = torch.tensor([0, t], dtype=torch.int32)
        for layer in tower.layers:
            h = layer(h, cu)[0]
        ref = proj(tower.ln_post(h)).numpy()
    assert got.shape == ref.shape == (10, 64)
    assert np.abs(got - ref).max() < 1e-4
    feats, mask = _reference_inputs(mel)
    with torch.no_grad():
        padded = hf_qwen3_model.model.get_audio_features(feats, mask, return_dict=True).pooler_output.numpy()
    assert np.abs(padded - ref).max() > 1e-3  # the two conventions really differ


def _prompt(n_audio: int) -> list[int]:
    s = SPECIAL
    return ([s["<|im_start|>"], 5, 6, 7, s["<|im_end|>"], s["<|im_start|>"], 8, s["<|audio_start|>"]]
            + [PAD] * n_audio + [s["<|audio_end|>"], s["<|im_end|>"], s["<|im_start|>"], 9, 10])  # fmt: skip


def test_decoder_logits_and_greedy_tokens_match_transformers(ours, hf_qwen3_model):
    import mlx.core as mx

    mel = features(_audio(10.37), 128)
    audio = ours.encode(mx.array(mel))
    ids = _prompt(audio.shape[0])
    feats, mask = _reference_inputs(mel)
    with torch.no_grad():
        ref = hf_qwen3_model(input_ids=torch.tensor([ids]), input_features=feats, input_features_mask=mask)
    got = np.array(ours.logits(ours.merged_embeddings(ids, audio), None, last_only=False))
    assert np.abs(got - ref.logits[0].numpy()).max() < 1e-4

    # Greedy with the KV cache, 40 tokens, EOS ignored on both sides.
    with torch.no_grad():
        out = hf_qwen3_model.generate(input_ids=torch.tensor([ids]), input_features=feats, input_features_mask=mask,
                                      attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=40,
                                      do_sample=False, eos_token_id=None)  # fmt: skip
    want = out[0, len(ids):].tolist()
    cache = ours.make_cache()
    logits = ours.logits(ours.merged_embeddings(ids, audio), cache)
    tokens = []
    for _ in range(40):
        tokens.append(int(mx.argmax(logits).item()))
        logits = ours.logits(ours.embed([tokens[-1]]), cache)
    assert tokens == want
    assert len(set(tokens)) > 5  # a real sequence, not one token repeated


def test_merged_embeddings_put_audio_exactly_at_the_pads(ours):
    import mlx.core as mx

    audio = mx.ones((3, 64)) * 7.0
    ids = [1, 2, PAD, PAD, PAD, 3]
    merged = np.array(ours.merged_embeddings(ids, audio))
    text = np.array(ours.embed([1, 2, 3]))
    assert np.array_equal(merged[2:5], np.full((3, 64), 7.0, np.float32))
    assert np.array_equal(merged[[0, 1, 5]], text)
    with pytest.raises(ValueError, match="audio pads"):
        ours.merged_embeddings([1, PAD, PAD, 2], audio)
