"""Voxtral Mini 4B Realtime: speed and memory of the streaming engine, side by side.

    python bench/voxtral.py [--steps 6] [--minutes 60] [--skip-full]

1. Time per 80 ms step at the real full size with random 4-bit weights (MLX), vs the
   transformers reference (bfloat16; its float32 would need 17.6 GB) on this CPU, both
   streaming the same speech one 80 ms frame at a time (encoder + adapter + decoder step).
2. A reduced config with the real sliding windows (750 encoder, 8192 decoder frames): time
   per step and MLX memory at minute 1 vs minute 60 of one continuous stream.
3. Time to the first decoder output after audio starts (the earliest any text can show),
   paced at wall-clock speed, for several delays.
Each part runs in its own process, so memory numbers are its own. Weights are random: the
text is noise, the timings are real.
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

FULL_ENCODER = dict(dim=1280, n_layers=32, head_dim=64, hidden_dim=5120, n_heads=32, n_kv_heads=32,
                    rope_theta=1e6, sliding_window=750, norm_eps=1e-5, num_mel_bins=128)
FULL_DECODER = dict(dim=3072, n_layers=26, head_dim=128, hidden_dim=9216, n_heads=32, n_kv_heads=8,
                    vocab_size=131072, norm_eps=1e-5, rope_theta=1e6, sliding_window=8192,
                    ada_rms_norm_t_cond_dim=32)
REDUCED_ENCODER = dict(FULL_ENCODER, dim=256, n_layers=4, n_heads=4, n_kv_heads=4, hidden_dim=1024)
REDUCED_DECODER = dict(FULL_DECODER, dim=256, n_layers=4, n_heads=4, n_kv_heads=2, head_dim=64, hidden_dim=768,
                       vocab_size=1024)


def _config(enc: dict, dec: dict):
    from asr.voxtral.config import AudioEncodingArgs, DecoderArgs, EncoderArgs, VoxtralConfig

    return VoxtralConfig(encoder=EncoderArgs(**enc), decoder=DecoderArgs(**dec), audio=AudioEncodingArgs(),
                         downsample_factor=4)


def _speech(seconds: float):
    import numpy as np

    from tests.asr.audio_util import espeak_clips, silence

    clips = [np.concatenate([a, silence(0.8)]) for _, a, _ in espeak_clips()]
    one = np.concatenate(clips)
    return np.tile(one, int(seconds * 16000 // len(one)) + 1)[: int(seconds * 16000)]


def _tokenizer(vocab: int):
    """A real-format tekken.json of the model's full vocabulary (`write_tekken`), loaded."""
    import tempfile

    from asr.voxtral.tokenizer import TekkenTokenizer

    return TekkenTokenizer.from_file(write_tekken(Path(tempfile.mkdtemp()) / "tekken.json", vocab))


def write_tekken(path: Path, vocab: int) -> Path:
    """A real-format tekken.json of the model's full vocabulary at `path`: the published
    special ranks, the 256 bytes, then distinct filler pieces (random weights emit any id)."""
    import base64

    from tests.asr.voxtral.tekken_fixture import REALTIME_AUDIO, REALTIME_SPECIAL_RANKS, TEKKEN_PATTERN

    n_special = 1000 if vocab > 2000 else 512
    names = {rank: name for name, rank in REALTIME_SPECIAL_RANKS.items()}
    pieces = [bytes([b]) for b in range(256)] + [f" w{i}".encode() for i in range(vocab - n_special - 256)]
    data = {
        "config": {"pattern": TEKKEN_PATTERN, "num_vocab_tokens": len(pieces), "default_vocab_size": vocab,
                   "default_num_special_tokens": n_special, "version": "v13"},
        "vocab": [{"rank": i, "token_bytes": base64.b64encode(p).decode(), "token_str": None}
                  for i, p in enumerate(pieces)],
        "special_tokens": [{"rank": r, "token_str": names.get(r, f"<SPECIAL_{r}>"), "is_control": True}
                           for r in range(n_special)],
        "audio": REALTIME_AUDIO,
    }
    path.write_text(json.dumps(data))
    return path


def _random_model(enc: dict, dec: dict, bits: int | None):
    import mlx.core as mx
    import mlx.nn as nn

    from asr.voxtral.model import VoxtralRealtime
    from asr.voxtral.weights import _quantizable

    model = VoxtralRealtime(_config(enc, dec))
    for _, m in model.named_modules():  # small random weights, norms at one
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight = mx.random.normal(m.weight.shape) * 0.02
    if bits:
        nn.quantize(model, group_size=64, bits=bits, class_predicate=lambda p, m: _quantizable(p, m, 64))
    mx.eval(model.parameters())
    return model


def _step_times(session, audio, warm_frames: int, steps: int) -> list[float]:
    """Feed whole 80 ms frames; time each frame's step (mel, encoder, adapter, decoder)."""
    frame = 1280
    times = []
    for i in range(warm_frames + steps):
        session.feed_audio(audio[i * frame : (i + 1) * frame])
        t = time.perf_counter()
        while not session.idle:
            session.step()
        if i >= warm_frames:
            times.append(time.perf_counter() - t)
    return times


def full_ours(steps: int) -> dict:
    import mlx.core as mx

    from asr.base import SessionOptions
    from asr.voxtral.session import VoxtralSession

    t = time.perf_counter()
    model = _random_model(FULL_ENCODER, FULL_DECODER, bits=4)
    build = time.perf_counter() - t
    session = VoxtralSession(model, _tokenizer(131072), SessionOptions(delay_ms=480))
    times = _step_times(session, _speech(5.0), warm_frames=8, steps=steps)  # 7 frames fill the prompt
    return {"step_s": statistics.median(times), "steps": times, "build_s": build,
            "mlx_peak_gb": mx.get_peak_memory() / 2**30, "rss_gb": _rss_gb()}


def full_reference(steps: int) -> dict:
    import numpy as np
    import torch
    from transformers import VoxtralRealtimeConfig, VoxtralRealtimeForConditionalGeneration

    from asr.features import voxtral_log_mel

    torch.set_num_threads(os.cpu_count() or 1)
    e, d = FULL_ENCODER, FULL_DECODER
    config = VoxtralRealtimeConfig(
        audio_config=dict(hidden_size=e["dim"], num_hidden_layers=e["n_layers"], intermediate_size=e["hidden_dim"],
                          num_attention_heads=e["n_heads"], head_dim=e["head_dim"],
                          sliding_window=e["sliding_window"]),
        text_config=dict(hidden_size=d["dim"], num_hidden_layers=d["n_layers"], intermediate_size=d["hidden_dim"],
                         num_attention_heads=d["n_heads"], num_key_value_heads=d["n_kv_heads"],
                         head_dim=d["head_dim"], vocab_size=d["vocab_size"], sliding_window=d["sliding_window"]))
    t = time.perf_counter()
    with torch.device("meta"):
        model = VoxtralRealtimeForConditionalGeneration(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    build = time.perf_counter() - t
    audio = _speech(5.0)
    body = np.concatenate([np.zeros(32 * 1280, np.float32), audio])
    mel = torch.from_numpy(voxtral_log_mel(body).T.copy())[None].to(torch.bfloat16)  # (1, 128, frames)
    prompt = torch.tensor([[1] + [32] * 38])
    times = []
    with torch.no_grad():
        out = model(input_ids=prompt, input_features=mel[:, :, : 39 * 8], use_cache=True, num_delay_tokens=6)
        pkv, epkv, pc = out.past_key_values, out.encoder_past_key_values, out.padding_cache
        tok = out.logits[:, -1:].argmax(-1)
        for i in range(steps + 1):
            chunk = mel[:, :, (39 + i) * 8 : (40 + i) * 8]
            t = time.perf_counter()
            out = model(input_ids=tok, input_features=chunk, past_key_values=pkv, encoder_past_key_values=epkv,
                        padding_cache=pc, use_cache=True, num_delay_tokens=6)
            pkv, epkv, pc = out.past_key_values, out.encoder_past_key_values, out.padding_cache
            tok = out.logits[:, -1:].argmax(-1)
            if i:  # the first step warms up
                times.append(time.perf_counter() - t)
    return {"step_s": statistics.median(times), "steps": times, "build_s": build, "rss_gb": _rss_gb()}


def stream(minutes: float) -> dict:
    """One continuous stream on the reduced config: step time and memory, minute 1 vs the last."""
    import mlx.core as mx
    import numpy as np

    from asr.base import SessionOptions
    from asr.voxtral.session import VoxtralSession

    model = _random_model(REDUCED_ENCODER, REDUCED_DECODER, bits=None)
    session = VoxtralSession(model, _tokenizer(1024), SessionOptions(delay_ms=480))
    block = _speech(60.0)
    frames_per_min = 750
    marks, t_start = {}, time.perf_counter()
    for minute in range(1, int(minutes) + 1):
        times = []
        for i in range(frames_per_min):
            session.feed_audio(block[i * 1280 : (i + 1) * 1280])
            t = time.perf_counter()
            while not session.idle:
                session.step()
            times.append(time.perf_counter() - t)
        if minute in (1, int(minutes)) or minute % 10 == 0:
            marks[minute] = {"step_ms": 1000 * float(np.median(times[60:])), "p95_ms": 1000 * float(np.percentile(times[60:], 95)),
                             "mlx_active_mb": mx.get_active_memory() / 2**20, "rss_mb": _rss_gb() * 1024}
            print(json.dumps({"minute": minute, **marks[minute], "elapsed_s": round(time.perf_counter() - t_start)}),
                  file=sys.stderr, flush=True)
    return {"marks": marks}


def first_text(delays: list[int]) -> dict:
    """Wall-clock time from the first audio sample to the first decoder output."""
    from asr.base import SessionOptions
    from asr.voxtral.session import VoxtralSession

    model = _random_model(REDUCED_ENCODER, REDUCED_DECODER, bits=None)
    tok = _tokenizer(1024)
    audio = _speech(5.0)
    out = {}
    for delay in delays:
        session = VoxtralSession(model, tok, SessionOptions(delay_ms=delay))
        first: list[float] = []
        t0 = time.perf_counter()
        session.on_token = lambda _t, first=first, t0=t0: first or first.append(time.perf_counter() - t0)
        for i in range(len(audio) // 1280):  # a microphone delivering 80 ms blocks in real time
            due = t0 + (i + 1) * 0.08
            time.sleep(max(0.0, due - time.perf_counter()))
            session.feed_audio(audio[i * 1280 : (i + 1) * 1280])
            while not session.idle:
                session.step()
            if first:
                break
        out[delay] = first[0] if first else None
    return out


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _worker(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--steps", str(args.steps), "--minutes", str(args.minutes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--worker")
    args = ap.parse_args()
    if args.worker:
        fn = {"full-ours": lambda: full_ours(args.steps), "full-ref": lambda: full_reference(args.steps),
              "stream": lambda: stream(args.minutes), "first": lambda: first_text([80, 480, 2400])}[args.worker]
        print(json.dumps(fn()))
        return
    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}; weights random")
    if not args.skip_full:
        ours, ref = _worker("full-ours", args), _worker("full-ref", args)
        print("\n1. full size (decoder 3072x26, encoder 1280x32), one 80 ms step (median of "
              f"{args.steps}):")
        if "error" in ours or "error" in ref:
            print(f"   ours: {ours.get('error', '')}  reference: {ref.get('error', '')}")
        else:
            print(f"   ours MLX 4-bit       {ours['step_s']:.2f} s/step  (peak MLX {ours['mlx_peak_gb']:.1f} GB, "
                  f"RSS {ours['rss_gb']:.1f} GB)")
            print(f"   transformers bf16    {ref['step_s']:.2f} s/step  (RSS {ref['rss_gb']:.1f} GB)")
            print(f"   ratio ours / reference: {ours['step_s'] / ref['step_s']:.2f}x; real time needs 0.08 s/step")
    s = _worker("stream", args)
    print(f"\n2. reduced config, one continuous {args.minutes:g}-minute stream:")
    if "error" in s:
        print(f"   {s['error']}")
    else:
        marks = {int(k): v for k, v in s["marks"].items()}
        first, last = marks[min(marks)], marks[max(marks)]
        for m, v in sorted(marks.items()):
            print(f"   minute {m:3d}: {v['step_ms']:.2f} ms/step (p95 {v['p95_ms']:.2f}), MLX {v['mlx_active_mb']:.1f} MB")
        print(f"   ratio last / minute 1: time {last['step_ms'] / first['step_ms']:.2f}x, "
              f"memory {last['mlx_active_mb'] / first['mlx_active_mb']:.2f}x (goal <= 1.1 both)")
    f = _worker("first", args)
    print("\n3. first decoder output after audio starts (wall clock, reduced config):")
    for delay, secs in f.items():
        floor = (int(delay) // 80 + 1) * 0.08
        print(f"   delay {int(delay):5d} ms: {secs:.3f} s  (the prompt needs {floor:.2f} s of audio first)")


if __name__ == "__main__":
    main()
