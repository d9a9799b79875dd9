"""Our MLX Whisper against transformers' WhisperForConditionalGeneration (test-only
reference) on a tiny random config, weights loaded through our transformers-layout loader."""

import mlx.core as mx
import numpy as np
import pytest

from asr.runtime import kernels
from asr.features import window_mel
from asr.whisper.weights import build_model, load_checkpoint

from ..audio_util import espeak_clips

torch = pytest.importorskip("torch")

TOKENS = [50257, 50363, 383, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13, 50413]


@pytest.fixture(scope="module")
def mel():
    audio = espeak_clips()[0][1]
    return window_mel(audio, 80)[None]  # (1, 3000, 80), real speech


@pytest.fixture(scope="module")
def reference(hf_tiny_model, mel):
    with torch.no_grad():
        feats = torch.from_numpy(mel.transpose(0, 2, 1).copy())  # HF takes (batch, mels, frames)
        enc = hf_tiny_model.model.encoder(feats).last_hidden_state
        logits = hf_tiny_model(input_features=feats, decoder_input_ids=torch.tensor([TOKENS])).logits
    return enc.numpy(), logits.numpy()


@pytest.fixture(params=[True, False], ids=["cpu-kernels", "mlx-ops"])
def kernel_path(request):
    kernels.set_cpu_kernels(request.param)
    yield request.param
    kernels.set_cpu_kernels(None)


@pytest.fixture(scope="module")
def ours(hf_tiny_dir):
    return build_model(load_checkpoint(hf_tiny_dir))


def test_encoder_output_matches(ours, mel, reference, kernel_path):
    enc = np.array(ours.encoder(mx.array(mel)))
    assert enc.shape == reference[0].shape
    np.testing.assert_allclose(enc, reference[0], atol=1e-4, rtol=0)


def test_teacher_forced_logits_match(ours, mel, reference, kernel_path):
    logits = np.array(ours(mx.array(mel), mx.array([TOKENS])))
    np.testing.assert_allclose(logits, reference[1], atol=1e-4, rtol=0)


def test_incremental_decoding_with_cache_matches(ours, mel, reference):
    """One token at a time through the KV cache gives the same logits as the full pass."""
    kv = ours.decoder.cross_kv(ours.encoder(mx.array(mel)))
    caches = ours.new_caches()
    first = ours.decoder(mx.array([TOKENS[:3]]), kv, caches)
    steps = [first] + [ours.decoder(mx.array([[t]]), kv, caches) for t in TOKENS[3:]]
    logits = np.concatenate([np.array(s) for s in steps], axis=1)
    np.testing.assert_allclose(logits, reference[1], atol=1e-4, rtol=0)
    assert caches[0].offset == len(TOKENS)


def test_greedy_tokens_match_transformers(ours, hf_tiny_model, mel):
    """Plain greedy argmax decoding (no suppression) gives the same tokens as transformers."""
    prompt = [50257, 50362]
    kv = ours.decoder.cross_kv(ours.encoder(mx.array(mel)))
    caches = ours.new_caches()
    logits = ours.decoder(mx.array([prompt]), kv, caches)
    mine = []
    for _ in range(12):
        t = int(np.argmax(np.array(logits[0, -1])))
        mine.append(t)
        logits = ours.decoder(mx.array([[t]]), kv, caches)
    feats = torch.from_numpy(mel.transpose(0, 2, 1).copy())
    ids = torch.tensor([prompt])
    with torch.no_grad():
        enc = hf_tiny_model.model.encoder(feats)
        for _ in range(12):
            out = hf_tiny_model(encoder_outputs=enc, decoder_input_ids=ids).logits[0, -1]
            ids = torch.cat([ids, out.argmax().view(1, 1)], dim=1)
    assert mine == ids[0, len(prompt):].tolist()


@pytest.mark.parametrize("layout", ["ct2-float32", "mlx"])
def test_other_layouts_give_the_same_logits(layout, ours, mel, ct2_tiny_dirs, mlx_tiny_dir):
    folder = ct2_tiny_dirs["float32"] if layout == "ct2-float32" else mlx_tiny_dir
    other = build_model(load_checkpoint(folder))
    a = np.array(ours(mx.array(mel), mx.array([TOKENS])))
    b = np.array(other(mx.array(mel), mx.array([TOKENS])))
    # CT2 stores the encoder sinusoids bit for bit; mlx computes them (float32 rounding ~1e-4).
    np.testing.assert_allclose(a, b, atol=0 if layout == "ct2-float32" else 1e-3)


def test_large_v3_shapes_128_mels_and_its_vocabulary(tmp_path):
    """large-v3 and turbo: 128 mel bins, 51866 tokens, fewer decoder than encoder layers."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from asr.features import window_mel

    torch.manual_seed(3)
    config = WhisperConfig(vocab_size=51866, num_mel_bins=128, d_model=64, encoder_layers=2, decoder_layers=1,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=256,
                           decoder_ffn_dim=256, max_source_positions=1500, max_target_positions=448)
    hf = WhisperForConditionalGeneration(config).eval()
    hf.save_pretrained(tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert (ckpt.dims.n_mels, ckpt.dims.n_vocab, ckpt.dims.n_text_layer) == (128, 51866, 1)
    ours = build_model(ckpt)
    mel = window_mel(espeak_clips()[1][1], 128)[None]
    tokens = [50258, 50259, 50360, 50365, 400, 500]
    with torch.no_grad():
        feats = torch.from_numpy(mel.transpose(0, 2, 1).copy())
        ref = hf(input_features=feats, decoder_input_ids=torch.tensor([tokens])).logits.numpy()
        ref_enc = hf.model.encoder(feats).last_hidden_state.numpy()
    np.testing.assert_allclose(np.array(ours.encoder(mx.array(mel))), ref_enc, atol=1e-4)
    np.testing.assert_allclose(np.array(ours(mx.array(mel), mx.array([tokens]))), ref, atol=1e-4)
