"""Whisper tiny.en on the meeting evaluation set: our MLX engine (offline and live) vs
faster-whisper (CTranslate2, float32 and int8), same audio, same machine, one run.

    python bench/whisper.py [--quick] [--shifts 0,50,100,200,350] [--only NAME]
                            [--systems ours-offline,fw-float32,...] [--json OUT]

The audio is bench/evalset.py's set (generated on first use into bench/out/evalset):
synthetic multi-voice meetings, each shifted by 0/50/100/200/350 ms of leading silence,
and Debian's five LibriVox utterances. `--quick` runs shift 0 only; `--only` keeps the
files whose id (e.g. "roadmap@0ms") contains the text.

Systems (each in its own process: the model is loaded once, then every file is run):
  ours-offline        WhisperEngine() (bundled tiny.en), SessionOptions(partials=False,
                      windowing="seek"): what `notetaker transcribe FILE` runs; fed 1 s
                      chunks with `while not s.idle: s.step()`, then finish()
  ours-live           partials=True, VAD windows, fed 0.1 s chunks, stepping until idle
                      after each (the live path at unlimited speed)
  ours-vad            partials=False, windowing="vad" (`transcribe --windowing vad`)
  ours-offline-beam5  seek windowing, beam_size=5 (`transcribe --beam-size 5`)
  ours-vad-beam5      VAD windows, beam_size=5 (only when asked for)
  fw-float32, fw-int8 faster_whisper.WhisperModel on the same folder, beam_size=1,
                      defaults otherwise (temperature fallback, previous-text prompts)
  fw-float32-beam5    beam_size=5
Only `Final` events count for ours; faster-whisper's segments count as finals.

Measured, per system:
  * WER per file and pooled (corpus WER: total edits / total reference words, with the
    normaliser of tests/support/wer.py), and pooled per shift;
  * overlaps: consecutive finals (sorted by start) overlapping by more than 0.3 s;
  * repeats: finals whose normalised text (4 words or more) equals or is contained in one
    of the previous 3 finals, and 6-word n-grams that the hypothesis holds at least twice
    and more often than the reference;
  * wall time of the files (model load and a 3 s warm-up not included), the real-time
    factor, time relative to fw-float32, model load time and peak RSS.
Goals (PASS/FAIL, exit status 1 when one fails): pooled WER of ours-offline at most
fw-float32 + 0.5 points, of ours-live at most fw-float32 + 1.0 point, of ours-offline-beam5
at most fw-float32-beam5 + 0.5, and no overlaps or repeats in any of ours. The VAD-window
modes are measured and held to no overlaps or repeats; their WER has no goal (seek is the
default for files because it is the more accurate).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import asr  # noqa: E402,F401  (BLAS set-up before numpy loads, as the product does)

if TYPE_CHECKING:
    import numpy as np

    from bench.evalset import Item

SR = 16_000
WARMUP_S = 3.0
OVERLAP_S = 0.3  # finals overlapping by more than this count as an overlap
REPEAT_MIN_WORDS = 4  # a final this long or longer, found in one of ...
REPEAT_LOOKBACK = 3  # ... the previous finals, is a repeat
NGRAM = 6

Segment = tuple[float, float, str]  # a final: start, end, text


@dataclass(frozen=True)
class System:
    name: str
    kind: str  # "ours" or "fw"
    partials: bool = False
    chunk_s: float = 1.0  # ours: audio fed per feed_audio call
    compute_type: str = "float32"  # fw
    beam_size: int = 1
    windowing: str = "vad"  # ours: SessionOptions.windowing
    default: bool = True  # run when --systems is not given


SYSTEMS = {s.name: s for s in (
    System("ours-offline", "ours", windowing="seek"),
    System("ours-live", "ours", partials=True, chunk_s=0.1),
    System("ours-vad", "ours"),
    System("ours-offline-beam5", "ours", windowing="seek", beam_size=5),
    System("ours-vad-beam5", "ours", beam_size=5, default=False),
    System("fw-float32", "fw"),
    System("fw-int8", "fw", compute_type="int8"),
    System("fw-float32-beam5", "fw", beam_size=5),
)}
# (system, baseline, allowed WER points above the baseline)
WER_GOALS = (("ours-offline", "fw-float32", 0.5), ("ours-live", "fw-float32", 1.0),
             ("ours-offline-beam5", "fw-float32-beam5", 0.5))


def default_systems() -> list[str]:
    return [s.name for s in SYSTEMS.values() if s.default]


# -- the worker: one system, every file ---------------------------------------------------

def _ours(system: System) -> Callable[[np.ndarray], list[Segment]]:
    from asr.base import Final, SessionOptions
    from asr.whisper.engine import WhisperEngine

    engine = WhisperEngine()
    options = SessionOptions(partials=system.partials, windowing=system.windowing, beam_size=system.beam_size)
    chunk = int(round(system.chunk_s * SR))

    def run(audio: np.ndarray) -> list[Segment]:
        s = engine.start_session(options)
        events = []
        for i in range(0, len(audio), chunk):
            s.feed_audio(audio[i : i + chunk])
            while not s.idle:
                events += s.step()
        events += s.finish()
        return [(e.start, e.end, e.text) for e in events if isinstance(e, Final)]

    return run


def _faster_whisper(system: System) -> Callable[[np.ndarray], list[Segment]]:
    from faster_whisper import WhisperModel

    from asr.whisper.engine import bundled_model_dir

    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type=system.compute_type)

    def run(audio: np.ndarray) -> list[Segment]:
        segments, _ = model.transcribe(audio, beam_size=system.beam_size)
        return [(s.start, s.end, s.text) for s in segments]

    return run


def worker(name: str, files: list[dict]) -> dict:
    import soundfile as sf

    system = SYSTEMS[name]
    t = time.perf_counter()
    run = _ours(system) if system.kind == "ours" else _faster_whisper(system)
    load_s = time.perf_counter() - t
    out: dict = {"system": name, "load_s": load_s, "items": {}}
    for n, f in enumerate(files):
        audio, sr = sf.read(f["path"], dtype="float32")
        assert sr == SR and audio.ndim == 1, f["path"]
        if n == 0:
            run(audio[: int(WARMUP_S * SR)])
        t = time.perf_counter()
        finals = run(audio)
        took = time.perf_counter() - t
        out["items"][f["id"]] = {"finals": finals, "time_s": took, "audio_s": len(audio) / SR}
        print(f"[{name}] {n + 1}/{len(files)} {f['id']}: {took:.1f} s", file=sys.stderr, flush=True)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_system(name: str, files: list[dict]) -> dict | None:
    """The system in its own process; None (and its output's tail) when it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        spec, result = Path(tmp) / "files.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps(files))
        cmd = [sys.executable, __file__, "--worker", name, str(spec), str(result)]
        # The worker's stderr (progress, warnings, a traceback) goes straight to ours.
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
        if proc.returncode or not result.is_file():
            print(f"{name} failed (exit {proc.returncode}); its output:\n{proc.stdout[-3000:]}", file=sys.stderr)
            return None
        return json.loads(result.read_text())


# -- metrics ------------------------------------------------------------------------------

def overlaps(finals: list[Segment]) -> int:
    ordered = sorted(finals, key=lambda f: f[0])
    return sum(a[1] - b[0] > OVERLAP_S for a, b in zip(ordered, ordered[1:]))


def repeated_finals(finals: list[Segment]) -> int:
    from tests.support.wer import normalize

    texts = [" " + " ".join(normalize(f[2])) + " " for f in finals]
    count = 0
    for i, text in enumerate(texts):
        previous = texts[max(0, i - REPEAT_LOOKBACK) : i]
        if len(text.split()) >= REPEAT_MIN_WORDS and any(text in prev for prev in previous):
            count += 1
    return count


def _ngrams(words: list[str]) -> Counter:
    return Counter(tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1))


def repeated_ngrams(reference: str, hypothesis: str) -> int:
    """Distinct 6-grams the hypothesis holds at least twice and more often than the reference."""
    from tests.support.wer import normalize

    ref, hyp = _ngrams(normalize(reference)), _ngrams(normalize(hypothesis))
    return sum(1 for g, n in hyp.items() if n >= 2 and n > ref[g])


def score_item(reference: str, finals: list[Segment]) -> dict:
    from tests.support.wer import edit_distance, normalize

    hyp = " ".join(f[2].strip() for f in finals)
    ref_words = normalize(reference)
    edits = edit_distance(ref_words, normalize(hyp))
    return {"hyp": hyp, "edits": edits, "words": len(ref_words), "wer": edits / max(1, len(ref_words)),
            "overlaps": overlaps(finals), "rep_finals": repeated_finals(finals),
            "rep_ngrams": repeated_ngrams(reference, hyp), "n_finals": len(finals)}


def score_system(raw: dict, references: dict[str, str]) -> dict:
    items = {i: {**r, **score_item(references[i], r["finals"])} for i, r in raw["items"].items()}
    total = lambda key: sum(it[key] for it in items.values())  # noqa: E731
    time_s, audio_s = total("time_s"), total("audio_s")
    return {"load_s": raw["load_s"], "peak_rss_mb": raw["peak_rss_mb"], "time_s": time_s, "audio_s": audio_s,
            "rtf": time_s / audio_s, "edits": total("edits"), "words": total("words"),
            "wer": total("edits") / max(1, total("words")), "overlaps": total("overlaps"),
            "rep_finals": total("rep_finals"), "rep_ngrams": total("rep_ngrams"), "n_finals": total("n_finals"),
            "items": items}


def pooled(result: dict, ids: list[str]) -> float:
    edits = sum(result["items"][i]["edits"] for i in ids)
    return edits / max(1, sum(result["items"][i]["words"] for i in ids))


def goals(results: dict[str, dict]) -> list[tuple[str, bool]]:
    out = []
    for name, base, points in WER_GOALS:
        if name in results and base in results:
            ours, ref = 100 * results[name]["wer"], 100 * results[base]["wer"]
            out.append((f"{name} WER {ours:.2f}% <= {base} {ref:.2f}% + {points}", ours <= ref + points + 1e-9))
    for name, r in results.items():
        if SYSTEMS[name].kind == "ours":
            bad = r["overlaps"] + r["rep_finals"] + r["rep_ngrams"]
            out.append((f"{name}: no overlaps or repeats ({r['overlaps']} overlaps, {r['rep_finals']} repeated "
                        f"finals, {r['rep_ngrams']} repeated 6-grams)", bad == 0))
    return out


# -- the report ---------------------------------------------------------------------------

def print_report(results: dict[str, dict], items: list[Item], gen_s: float) -> list[tuple[str, bool]]:
    names = list(results)
    width = max(12, *(len(n) for n in names))
    audio_s = next(iter(results.values()))["audio_s"] if results else 0.0
    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}; {len(items)} files, {audio_s / 60:.1f} min "
          f"of audio; evalset ready in {gen_s:.1f} s")
    print("\nper-file WER (%)")
    print(f"{'file':22} {'words':>5} " + " ".join(f"{n:>{width}}" for n in names))
    for it in items:
        cells = " ".join(f"{100 * results[n]['items'][it.id]['wer']:>{width}.1f}" for n in names)
        print(f"{it.id:22} {results[names[0]]['items'][it.id]['words']:5d} {cells}")
    shifts = sorted({it.shift_ms for it in items})
    if len(shifts) > 1:
        print("\npooled WER (%) by shift")
        for s in shifts:
            ids = [it.id for it in items if it.shift_ms == s]
            print(f"{f'{s} ms':22} {'':5} " + " ".join(f"{100 * pooled(results[n], ids):>{width}.2f}" for n in names))
    base = results.get("fw-float32")
    print(f"\n{'system':{width}} {'WER %':>6} {'edits/words':>11} {'overlaps':>8} {'rep-fin':>7} {'rep-6g':>6} "
          f"{'finals':>6} {'load s':>6} {'wall s':>7} {'RTF':>6} {'x fw32':>6} {'RSS MB':>6}")
    for n, r in results.items():
        ratio = f"{r['time_s'] / base['time_s']:6.2f}" if base else f"{'-':>6}"
        print(f"{n:{width}} {100 * r['wer']:6.2f} {r['edits']:>5}/{r['words']:<5} {r['overlaps']:8d} "
              f"{r['rep_finals']:7d} {r['rep_ngrams']:6d} {r['n_finals']:6d} {r['load_s']:6.2f} "
              f"{r['time_s']:7.1f} {r['rtf']:6.3f} {ratio} {r['peak_rss_mb']:6.0f}")
    checks = goals(results)
    print("\ngoals" + ("" if checks else ": none apply to these systems"))
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return checks


def parse_args() -> argparse.Namespace:
    from bench.evalset import DEFAULT_OUT, SHIFTS_MS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", help=f"comma-separated, of {', '.join(SYSTEMS)} "
                                      f"(default: all but ours-vad-beam5)")
    ap.add_argument("--shifts", default=",".join(map(str, SHIFTS_MS)), help="leading silence, ms, comma-separated")
    ap.add_argument("--quick", action="store_true", help="shift 0 only")
    ap.add_argument("--only", help="keep files whose id contains this text")
    ap.add_argument("--evalset", type=Path, default=DEFAULT_OUT, help="the evaluation set's folder")
    ap.add_argument("--json", type=Path, help="write every text and number here")
    return ap.parse_args()


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        result = worker(sys.argv[2], json.loads(Path(sys.argv[3]).read_text()))
        Path(sys.argv[4]).write_text(json.dumps(result))
        return 0
    from bench.evalset import evalset

    args = parse_args()
    names = args.systems.split(",") if args.systems else default_systems()
    for n in names:
        if n not in SYSTEMS:
            sys.exit(f"unknown system {n!r} (one of: {', '.join(SYSTEMS)})")
    shifts = (0,) if args.quick else tuple(int(s) for s in args.shifts.split(","))
    t = time.perf_counter()
    items = [it for it in evalset(args.evalset, shifts) if it.shift_ms in shifts and (args.only or "") in it.id]
    gen_s = time.perf_counter() - t
    if not items:
        sys.exit("no files match")
    files = [{"id": it.id, "path": str(it.path)} for it in items]
    references = {it.id: it.text for it in items}
    results = {}
    for n in names:
        raw = run_system(n, files)
        if raw is not None:
            results[n] = score_system(raw, references)
    if not results:
        sys.exit("every system failed")
    checks = print_report(results, items, gen_s)
    if args.json:
        report = {"evalset": str(args.evalset), "shifts": shifts, "references": references, "systems": results,
                  "failed": [n for n in names if n not in results],
                  "goals": [{"goal": text, "pass": ok} for text, ok in checks]}
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if len(results) == len(names) and all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
