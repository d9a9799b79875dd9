"""Whisper tiny.en: our MLX engine vs faster-whisper (CTranslate2 int8 and float32, CPU)
on the same audio, the same machine, one run. Prints time, real-time factor, peak
memory and WER side by side, with ratios.

    python bench/whisper.py [--repeat 3] [--meeting-minutes 3]

Each engine runs in its own process (so peak RSS is its own), on:
  * librivox: the five LibriVox utterances of Debian's pocketsphinx-testdata, one file each;
  * meeting: every labelled test clip (LibriVox, cards, espeak) joined with pauses and
    repeated to a few minutes, transcribed as one recording.
Ours runs the product path (`notetaker transcribe`: VAD, windows, batched decoding);
faster-whisper runs its defaults with beam size 1 (temperature fallback and
conditioning on previous text on).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import asr  # noqa: E402,F401  (BLAS set-up before numpy loads, as the product does)

ENGINES = ("ours", "fw-int8", "fw-float32")


def inputs(meeting_minutes: float):
    import numpy as np

    from tests.asr.audio_util import cards_clips, espeak_clips, librivox_clips, silence

    libri = librivox_clips()
    labelled = libri + cards_clips() + espeak_clips()
    one = [(np.concatenate([a, silence(1.0)]), t) for _, a, t in labelled]
    seconds = sum(len(a) for a, _ in one) / 16000
    reps = max(1, int(round(meeting_minutes * 60 / seconds)))
    meeting = np.concatenate([a for a, _ in one] * reps)
    meeting_text = " ".join(t for _, t in one)
    return {
        "librivox": ([a for _, a, _ in libri], [t for _, _, t in libri]),
        "meeting": ([meeting], [" ".join([meeting_text] * reps)]),
    }


def _ours(files):
    from asr.base import Final, SessionOptions
    from asr.whisper.engine import WhisperEngine

    t = time.perf_counter()
    engine = WhisperEngine()
    load_s = time.perf_counter() - t

    def run(audio):
        s = engine.start_session(SessionOptions(partials=False))
        events = []
        for i in range(0, len(audio), 16000):
            s.feed_audio(audio[i : i + 16000])
            while not s.idle:
                events += s.step()
        events += s.finish()
        return " ".join(e.text for e in events if isinstance(e, Final))

    return load_s, run


def _faster_whisper(compute_type):
    from faster_whisper import WhisperModel

    from asr.whisper.engine import bundled_model_dir

    t = time.perf_counter()
    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type=compute_type)
    load_s = time.perf_counter() - t

    def run(audio):
        segments, _ = model.transcribe(audio, beam_size=1)
        return " ".join(s.text for s in segments)

    return load_s, run


def worker(engine: str, repeat: int, meeting_minutes: float) -> dict:
    data = inputs(meeting_minutes)
    load_s, run = _ours(None) if engine == "ours" else _faster_whisper(engine.split("-", 1)[1])
    run(data["librivox"][0][0][: 16000 * 3])  # warm-up
    out = {"engine": engine, "load_s": load_s, "inputs": {}}
    for name, (files, truth) in data.items():
        times, texts = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            texts = [run(a) for a in files]
            times.append(time.perf_counter() - t)
        audio_s = sum(len(a) for a in files) / 16000
        out["inputs"][name] = {"audio_s": audio_s, "time_s": min(times), "median_s": statistics.median(times),
                               "texts": texts, "truth": truth}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if engine == "ours":
        import mlx.core as mx

        out["mlx_peak_mb"] = mx.get_peak_memory() / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--meeting-minutes", type=float, default=3.0)
    ap.add_argument("--worker", choices=ENGINES)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeat, args.meeting_minutes)))
        return

    from tests.support.wer import wer

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results = {}
    for engine in ENGINES:
        cmd = [sys.executable, __file__, "--worker", engine, "--repeat", str(args.repeat),
               "--meeting-minutes", str(args.meeting_minutes)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            sys.exit(f"{engine} failed:\n{proc.stderr[-2000:]}")
        results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])

    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}; repeat {args.repeat}, best time")
    print("model load: " + ", ".join(f"{e} {r['load_s']:.2f} s" for e, r in results.items()))
    print("peak RSS:   " + ", ".join(f"{e} {r['peak_rss_mb']:.0f} MB" for e, r in results.items())
          + f" (ours MLX peak {results['ours']['mlx_peak_mb']:.0f} MB)")
    head = f"{'input':10} {'audio':>7} " + " ".join(f"{e + ' s':>12} {'RTF':>6} {'WER':>6}" for e in ENGINES)
    print(head)
    for name in results["ours"]["inputs"]:
        row = f"{name:10} {results['ours']['inputs'][name]['audio_s']:6.1f}s "
        for e in ENGINES:
            r = results[e]["inputs"][name]
            row += f" {r['time_s']:11.2f} {r['time_s'] / r['audio_s']:6.3f} {wer(r['truth'], r['texts']):6.3f}"
        print(row)
    print("ratios (ours / faster-whisper; time < 1.0 means ours is faster):")
    for name in results["ours"]["inputs"]:
        ours = results["ours"]["inputs"][name]["time_s"]
        parts = [f"{name}: time vs {e} {ours / results[e]['inputs'][name]['time_s']:.2f}x" for e in ENGINES[1:]]
        print("  " + "; ".join(parts))
    print("  peak RSS: " + "; ".join(
        f"vs {e} {results['ours']['peak_rss_mb'] / results[e]['peak_rss_mb']:.2f}x" for e in ENGINES[1:]))


if __name__ == "__main__":
    main()
