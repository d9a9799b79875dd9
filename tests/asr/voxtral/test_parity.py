"""Our MLX Voxtral Realtime against transformers' VoxtralRealtimeForConditionalGeneration
(test-only reference) on a tiny random config, weights loaded from its transformers layout
through our loader; then our streaming paths against our own one-call paths.

The encoder window is 16 frames and the decoder's 32 tokens, so every test with more than
~3 s of audio runs past both windows.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from asr.runtime import kernels
from asr.features import voxtral_log_mel
from asr.voxtral.model import SlidingCache, VoxtralRealtime, time_embedding
from asr.voxtral.weights import build_model, load_checkpoint
from tests.asr.audio_util import espeak_clips
from tests.asr.voxtral.conftest import DEC, ENC

torch = pytest.importorskip("torch")

BOS, EOS, STREAMING_PAD = 1, 2, 32  # ids in the published tekken.json (and the tiny one)
N_LEFT_PAD = 32  # tekken.json audio.streaming_n_left_pad_tokens
SAMPLES_PER_TOKEN = 1280


def offline_mel(audio: np.ndarray, n_delay: int) -> np.ndarray:
    """The offline framing of mistral-common / transformers' processor: 32 tokens of silence
    on the left; on the right, up to a whole token, then (n_delay + 1) + 10 tokens more."""
    align = -audio.size % SAMPLES_PER_TOKEN
    right = align + (n_delay + 1 + 10) * SAMPLES_PER_TOKEN
    padded = np.pad(audio.astype(np.float32), (N_LEFT_PAD * SAMPLES_PER_TOKEN, right))
    mel = voxtral_log_mel(padded)
    assert mel.shape[0] % 8 == 0
    return mel


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return espeak_clips()[0][1][: 16000 * 2]


@pytest.fixture(scope="module")
def mel(speech) -> np.ndarray:
    return offline_mel(speech, 6)  # (T, 128), T = 8 * tokens


@pytest.fixture(scope="module")
def hf(hf_voxtral_model):
    return hf_voxtral_model


@pytest.fixture(scope="module")
def ours(voxtral_dirs) -> VoxtralRealtime:
    return build_model(load_checkpoint(voxtral_dirs["transformers"]))


def features(mel: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(mel.T[None]))  # HF takes (batch, mels, frames)


def tokens_for(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, DEC["vocab_size"], size=(1, n))


# --- against transformers -----------------------------------------------------------------


def test_time_embedding_matches(hf, ours):
    for delay in (1.0, 6.0, 30.0):
        with torch.no_grad():
            ref = hf.model.time_embedding(torch.tensor([delay])).numpy()
        np.testing.assert_allclose(np.array(time_embedding(delay, DEC["dim"])), ref, atol=1e-6)
    assert ours.config.delay_tokens(480) == 6


def test_conv_stem_and_encoder_match(hf, ours, mel):
    with torch.no_grad():
        stem = hf.model.audio_tower.embedder(features(mel)).numpy()
        enc = hf.model.audio_tower(input_features=features(mel), use_cache=False).last_hidden_state.numpy()
    encoder = ours.whisper_encoder
    frames, _ = encoder.conv_stem(mx.array(mel[None]), encoder.initial_tails())
    np.testing.assert_allclose(np.array(frames), stem, atol=1e-5)
    hidden = encoder.transformer(frames, encoder.make_caches())
    assert hidden.shape == (1, mel.shape[0] // 2, ENC["dim"]) and hidden.shape[1] > 4 * ENC["sliding_window"]
    np.testing.assert_allclose(np.array(hidden), enc, atol=1e-4)


def test_adapter_output_matches(hf, ours, mel):
    with torch.no_grad():
        ref = hf.model.get_audio_features(input_features=features(mel), use_cache=False).pooler_output.numpy()
    got = np.array(ours.encode(mx.array(mel[None])))
    assert got.shape == (1, mel.shape[0] // 8, DEC["dim"])
    np.testing.assert_allclose(got, ref, atol=1e-4)


@pytest.fixture(params=[True, False], ids=["cpu-kernels", "mlx-ops"])
def kernel_path(request):
    kernels.set_cpu_kernels(request.param)
    yield request.param
    kernels.set_cpu_kernels(None)


@pytest.mark.parametrize("delay", [6, 2])
def test_teacher_forced_logits_match(hf, ours, mel, delay, kernel_path):
    tokens = tokens_for(mel.shape[0] // 8)
    assert tokens.shape[1] > 2 * DEC["sliding_window"]
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(tokens), input_features=features(mel),
                 num_delay_tokens=delay, use_cache=False).logits.numpy()
    got = np.array(ours(mx.array(mel[None]), mx.array(tokens), float(delay)))
    np.testing.assert_allclose(got, ref, atol=1e-4)


def greedy_offline(model: VoxtralRealtime, mel: np.ndarray, n_delay: int) -> list[int]:
    """The offline schedule: prefill [BOS] + [STREAMING_PAD] * (32 + n_delay) with the first
    adapter frames, then one greedy step per adapter frame (input: frame + previous token),
    as far as transformers' generate goes (the audio's token count) or to EOS."""
    audio = model.encode(mx.array(mel[None]))
    n = audio.shape[1]
    prompt = [BOS] + [STREAMING_PAD] * (N_LEFT_PAD + n_delay)
    caches, scales = model.make_caches(), model.ada_scales(n_delay)
    h = model.decode(audio[:, : len(prompt)] + model.embed(mx.array([prompt])), caches, scales)
    out = [int(mx.argmax(model.logits(h[:, -1])).item())]
    for pos in range(len(prompt), n - 1):
        if out[-1] == EOS:
            break
        h = model.decode(audio[:, pos : pos + 1] + model.embed(mx.array([[out[-1]]])), caches, scales)
        out.append(int(mx.argmax(model.logits(h[:, -1])).item()))
    return out


@pytest.mark.parametrize("delay_ms", [480, 160])
def test_greedy_stream_matches_generate(hf, ours, speech, delay_ms):
    n_delay = ours.config.delay_tokens(delay_ms)
    mel = offline_mel(speech, n_delay)
    prompt = [BOS] + [STREAMING_PAD] * (N_LEFT_PAD + n_delay)
    n_tokens = mel.shape[0] // 8  # generate's own bound: one token per adapter frame in all
    with torch.no_grad():
        ref = hf.generate(input_ids=torch.tensor([prompt]), input_features=features(mel),
                          num_delay_tokens=n_delay, do_sample=False,
                          max_new_tokens=n_tokens - len(prompt))[0, len(prompt):].tolist()
    got = greedy_offline(ours, mel, n_delay)
    assert len(ref) > 20 and len(set(ref)) > 5  # a real stream, not one repeated token
    assert got == ref


# --- streaming equals one call ---------------------------------------------------------------


def stream(model: VoxtralRealtime, mel: mx.array, tokens: mx.array, chunks, delay: float,
           rebase_at: int | None = None, rebase_every: int | None = None):
    """Mel fed in `chunks` (frame counts); every adapter frame decoded the moment it exists,
    teacher-forced with `tokens`. Returns (adapter frames, logits, audio state, caches)."""
    state, caches = model.new_audio_state(rebase_at=rebase_at), model.make_caches(rebase_at)
    scales = model.ada_scales(delay)
    frames, logits, start = [], [], 0
    for size in chunks:
        audio = model.encode_audio(mel[:, start : start + size], state)
        start += size
        for i in range(audio.shape[1]):
            t = len(logits)
            if rebase_every and t and t % rebase_every == 0:
                model.rebase(caches, 5)
            h = model.decode(audio[:, i : i + 1] + model.embed(tokens[:, t : t + 1]), caches, scales)
            logits.append(model.logits(h))
        frames.append(audio)
        assert state.tails[0].shape[1] == 2 and 1 <= state.tails[1].shape[1] <= 2
        assert state.pending.shape[1] < 4
    assert start == mel.shape[1]
    return mx.concatenate(frames, axis=1), mx.concatenate(logits, axis=1), state, caches


def chunkings(n_frames: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(3)
    sizes = []
    while sum(sizes) < n_frames:
        sizes.append(int(rng.integers(1, 40)))
    sizes[-1] -= sum(sizes) - n_frames
    ones = [1] * n_frames
    return {"10ms": ones, "80ms": [8] * (n_frames // 8), "1s": [100] * (n_frames // 100) + [n_frames % 100],
            "random": sizes}  # fmt: skip


@pytest.fixture(scope="module")
def one_call(ours, mel):
    tokens = mx.array(tokens_for(mel.shape[0] // 8, seed=1))
    frames = ours.encode(mx.array(mel[None]))
    return tokens, np.array(frames), np.array(ours.logits(ours.decode(
        frames + ours.embed(tokens), ours.make_caches(), ours.ada_scales(6.0))))


@pytest.mark.parametrize("chunking", ["10ms", "80ms", "1s", "random"])
def test_streaming_equals_one_call(ours, mel, one_call, chunking):
    tokens, frames, logits = one_call
    chunks = [c for c in chunkings(mel.shape[0])[chunking] if c]
    got_frames, got_logits, _, _ = stream(ours, mx.array(mel[None]), tokens, chunks, 6.0)
    np.testing.assert_allclose(np.array(got_frames), frames, atol=1e-5)
    np.testing.assert_allclose(np.array(got_logits), logits, atol=1e-4)


def test_decoder_chunks_equal_one_call(ours, one_call):
    tokens, frames, logits = one_call
    embeds = mx.array(frames) + ours.embed(tokens)
    caches, scales = ours.make_caches(), ours.ada_scales(6.0)
    out, start = [], 0
    for size in (39, 1, 5, 20, 3, 100):  # a prompt, then steps and bursts
        out.append(ours.logits(ours.decode(embeds[:, start : start + size], caches, scales)))
        start += size
    np.testing.assert_allclose(np.array(mx.concatenate(out, axis=1)), logits, atol=1e-4)


@pytest.mark.parametrize("window", [300, 7])
def test_sliding_cache_attends_exactly_the_window(window):
    """Through growth (256-slot steps), wrap-around and mixed writes of 1 and many tokens,
    attention over what the cache keeps equals attention over all keys with a window mask."""
    rng = np.random.default_rng(window)
    sizes = [1] * 40 + [37] + [1] * 300 + [5, 120, 1, 1, 2] + [1] * 400 + [64]
    total = sum(sizes)
    q_all, k_all, v_all = (mx.array(rng.standard_normal((1, 2, total, 8)).astype(np.float32))
                           for _ in range(3))
    cache, start = SlidingCache(window), 0
    for n in sizes:
        q, k, v = (a[:, :, start : start + n] for a in (q_all, k_all, v_all))
        mask = cache.make_mask(n)
        keys, values = cache.update_and_fetch(k, v)
        assert keys.shape[2] <= window + n - 1
        got = mx.fast.scaled_dot_product_attention(q, keys, values, scale=1.0, mask=mask)
        pos_q = mx.arange(start, start + n)[:, None]
        pos_k = mx.arange(start + n)[None]
        full = (pos_k <= pos_q) & (pos_q - pos_k < window)
        ref = mx.fast.scaled_dot_product_attention(q, k_all[:, :, : start + n], v_all[:, :, : start + n],
                                                   scale=1.0, mask=full)
        np.testing.assert_allclose(np.array(got), np.array(ref), atol=1e-5, err_msg=f"at {start}+{n}")
        start += n
    assert cache.offset == total and cache.keys.shape[2] == window + 64 - 1


def test_long_stream_matches_transformers_past_both_windows(hf, ours):
    """80 ms chunks through every cache for 24 s of speech: the caches stay within their
    windows and the logits still equal transformers' full sliding-window pass."""
    n_tokens = 300
    audio = np.concatenate([clip for _, clip, _ in espeak_clips()])[: n_tokens * SAMPLES_PER_TOKEN]
    mel = voxtral_log_mel(audio)
    assert mel.shape == (8 * n_tokens, 128)
    tokens = tokens_for(n_tokens, seed=2)
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(tokens), input_features=features(mel),
                 num_delay_tokens=6, use_cache=False).logits.numpy()
    _, logits, state, caches = stream(ours, mx.array(mel[None]), mx.array(tokens), [8] * n_tokens, 6.0)
    # Logits up to ~15 after 300 float32 steps: 1 in 307,200 once differed by 1.02e-4 under a
    # loaded machine (BLAS threading changes the summation order), so a relative term too.
    np.testing.assert_allclose(np.array(logits), ref, atol=1e-4, rtol=1e-5)
    for cache in state.caches:
        assert cache.offset == 4 * n_tokens and cache.keys.shape[2] <= ENC["sliding_window"] + 4
    for cache in caches:
        assert cache.offset == n_tokens and cache.keys.shape[2] == DEC["sliding_window"]


@pytest.mark.parametrize("how", ["automatic", "explicit"])
def test_rebased_positions_give_the_same_logits(ours, mel, one_call, how):
    """Positions re-based (cached keys rotated back) give what un-rebased positions give."""
    tokens, frames, logits = one_call
    chunks = [8] * (mel.shape[0] // 8)
    if how == "automatic":  # rebase whenever positions pass window + 3
        got_frames, got_logits, state, caches = stream(
            ours, mx.array(mel[None]), tokens, chunks, 6.0, rebase_at=DEC["sliding_window"] + 3)
        assert max(c.origin for c in state.caches) > 0
        assert all(c.position <= c.rebase_at + 4 for c in state.caches)  # 4 frames per 80 ms
        assert all(c.position <= c.rebase_at + 1 for c in caches)
    else:  # the decoder's origin moved by 5 every 7 steps, whatever the window
        got_frames, got_logits, state, caches = stream(
            ours, mx.array(mel[None]), tokens, chunks, 6.0, rebase_every=7)
    assert len({c.origin for c in caches}) == 1 and caches[0].origin > 0
    assert caches[0].position < caches[0].offset
    np.testing.assert_allclose(np.array(got_frames), frames, atol=1e-5)
    np.testing.assert_allclose(np.array(got_logits), logits, atol=1e-4)
