"""Long run: hours of real-time-paced audio through the real recorder, spool and store.

    python bench/long_run.py [--engine scripted|whisper] [--hours 2] [--speed auto|N]
                             [--diarize none|doubles|models]

A WAV of the fixture sentences (tests/fixtures/speech, 0.7 s apart, looped) is played by
FileSource at wall-clock pace sped up by --speed (the clock flag `--realtime --speed`
uses), through Recorder(realtime=True) with the audio spool on and a SQLite store, as
`notetaker transcribe FILE --realtime --speed N` runs it.

  --engine scripted   tests/app/scripted.py: a final every 5 s of audio and a partial
                      between, no model (measures the recorder, spool and store alone)
  --engine whisper    Whisper tiny.en, live mode (partials re-decoded about every second)

--diarize adds live speaker labels (notetaker.diarization.LiveSpeakers on the compute thread,
finals held for their speaker, the offline pass at the end): `doubles` with the model doubles
of tests/diarize/doubles.py (the pipeline's own cost and memory: the kept embeddings and
activity must keep RSS flat), `models` with the pulled diarization models (their CPU cost
beside the engine: compare RTF with --diarize none at the same speed).

--speed auto finds the highest speed the engine keeps up with first: short trial runs
(CALIBRATE_S of audio) from the top of SPEEDS down; a speed keeps up when the transcript
is never more than MAX_LAG_S of audio behind in the trial's second half and ends less
than END_LAG_S behind (or MAX_LAG_WALL_S x speed, at speeds where 10 ms of polling is
more audio than that), and the run took no longer than the audio's length / speed (+5 %):
the source's clock held. The long run then uses that speed.

Reported: wall time; resident memory (RSS, /proc/self/statm, sampled by audio time) in
minutes 10-20 against the last 10 minutes (flat: within 5 %); frames read from the file
vs spooled vs fed to the engine (no dropped frames: all equal); the raw spool's size
just before compaction vs 2 bytes x frames; the FLAC's frames, size and compaction time;
the transcript's lag (both sampled every 20 ms of wall time, or every 0.25 s of audio when
that is longer). Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import asr  # noqa: E402,F401  (BLAS set-up before numpy loads, as the product does)
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

RATE = 16_000
SPEECH = ROOT / "tests" / "fixtures" / "speech"
GAP_S = 0.7
# Trial speeds, fastest first. Scripted: at 1600x reading the WAV itself is the limit here.
SPEEDS = {"scripted": (800, 400, 200, 100, 50, 25), "whisper": (16, 12, 8, 6, 4, 3, 2, 1.5, 1)}
CALIBRATE_S = {"scripted": 1800.0, "whisper": 120.0}
MAX_LAG_S = 10.0  # audio seconds behind, at most, in the second half of a run ...
MAX_LAG_WALL_S = 0.05  # ... or this much wall time (a commit, and the compute loop's 10 ms polls)
END_LAG_S = 5.0
PACE_TOLERANCE = 1.05  # wall time at most this times audio / speed (+ 0.1 s to start, + the compaction)
RSS_TOLERANCE = 0.05


def speech_cycle() -> np.ndarray:
    """The twelve fixture sentences, each followed by GAP_S of silence (about 50 s)."""
    parts = []
    for path in sorted(SPEECH.glob("es*.flac")):
        audio, rate = sf.read(path, dtype="float32")
        assert rate == RATE
        parts += [audio, np.zeros(int(GAP_S * RATE), np.float32)]
    return np.concatenate(parts)


def write_meeting(path: Path, seconds: float) -> int:
    """A WAV of `seconds` of looped speech, written in pieces; returns its frames."""
    cycle = speech_cycle()
    total = int(round(seconds * RATE))
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as f:
        left = total
        while left:
            n = min(left, len(cycle))
            f.write(cycle[:n])
            left -= n
    return total


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_engine(name: str, seconds: float):
    if name == "whisper":
        from asr.registry import load_engine

        return load_engine("whisper", "tiny.en")
    from tests.app.scripted import ScriptedEngine, final, partial

    cues = []
    for k in range(1, int(seconds // 5) + 1):
        t = 5.0 * k
        cues += [partial(t - 2.5, f"partial {k}"), final(t, f"Final number {k} of the long run.", start=t - 4.0)]
    return ScriptedEngine(cues, step_s=0.25)


@dataclass
class RunResult:
    engine: str
    speed: float
    audio_s: float
    wall_s: float = 0.0
    status: str = ""
    finals: int = 0
    frames_file: int = 0
    frames_spooled: int = 0
    frames_fed: int = 0
    dropped_frames: int = 0
    raw_bytes_before_compaction: int = 0
    flac_frames: int = 0
    flac_bytes: int = 0
    compaction_s: float = 0.0
    max_lag_s: float = 0.0
    max_lag_second_half_s: float = 0.0
    end_lag_s: float = 0.0
    rtf: float = 0.0
    rss_mb_10_20: float = 0.0  # mean RSS over audio minutes 10-20
    rss_mb_last_10: float = 0.0  # mean RSS over the last 10 audio minutes
    rss_max_mb_10_20: float = 0.0
    rss_max_mb_last_10: float = 0.0
    rss_max_mb_after_end: float = 0.0  # while the meeting ends (engine finish, FLAC compaction)
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (audio minute, MB), one a minute
    diarize: str = "none"
    diarize_kept_mb: float = 0.0  # what the live pass keeps for the offline pass (embeddings, activity)
    diarize_skipped_s: float = 0.0  # audio the diarizer skipped, too far behind
    speakers: int = 0  # labels in the stored meeting

    @property
    def paced(self) -> bool:
        """The clock held: the run took the audio's length / speed (the source was never late)."""
        return self.wall_s <= PACE_TOLERANCE * self.audio_s / self.speed + 0.1 + self.compaction_s

    @property
    def kept_up(self) -> bool:
        bound = max(MAX_LAG_S, MAX_LAG_WALL_S * self.speed)
        return self.paced and self.max_lag_second_half_s <= bound and self.end_lag_s <= END_LAG_S

    @property
    def rss_change(self) -> float:
        return self.rss_mb_last_10 / self.rss_mb_10_20 - 1 if self.rss_mb_10_20 else 0.0

    def checks(self) -> dict[str, bool]:
        expected_frames = int(round(self.audio_s * RATE))
        out = {
            "complete": self.status == "complete",
            "no dropped frames": self.dropped_frames == 0
            and self.frames_file == self.frames_spooled == self.frames_fed == expected_frames,
            "raw spool = 2 bytes x frames": self.raw_bytes_before_compaction == 2 * expected_frames,
            "FLAC holds every frame": self.flac_frames == expected_frames,
            "kept up (paced, bounded lag)": self.kept_up,
        }
        if self.audio_s >= 30 * 60:
            out["memory flat (last 10 min within 5% of min 10-20)"] = abs(self.rss_change) <= RSS_TOLERANCE
        return out


def make_speakers(kind: str):
    """The recorder's `speakers=` factory for --diarize (None: none)."""
    if kind == "none":
        return None
    from notetaker.diarization import Diarization, LiveSpeakers, load_live

    if kind == "doubles":
        from tests.diarize.doubles import ToneEmbedder, ToneSegmenter

        return lambda: LiveSpeakers(ToneSegmenter(), ToneEmbedder(), (None,), realtime=True)
    from notetaker.config import load_settings
    from notetaker.models import diarization_folder

    folder = diarization_folder(load_settings())
    if folder is None:
        raise SystemExit("the diarization models are not downloaded: notetaker models pull diarization")
    return lambda: load_live(Diarization(True, folder), (None,), realtime=True)


def run(engine_name: str, seconds: float, speed: float, workdir: Path, engine=None, quiet: bool = False,
        diarize: str = "none") -> RunResult:
    """One recording of `seconds` of audio at `speed` x real time; measured, not judged."""
    from notetaker import spool as spool_mod
    from notetaker.audio import FileSource
    from notetaker.recorder import Recorder, RecorderListener
    from notetaker.spool import open_spool
    from storage import SessionStore

    workdir.mkdir(parents=True, exist_ok=True)
    wav = workdir / f"meeting-{int(seconds)}s.wav"
    frames = write_meeting(wav, seconds) if not wav.exists() else sf.info(str(wav)).frames
    home = Path(tempfile.mkdtemp(prefix="home-", dir=workdir))
    engine = engine or make_engine(engine_name, seconds)
    result = RunResult(engine_name, speed, seconds, frames_file=frames, diarize=diarize)

    class Lag(RecorderListener):
        def on_progress(self, p) -> None:
            result.dropped_frames = max(result.dropped_frames, p.dropped_frames)

        def on_speakers_error(self, message: str) -> None:
            print(f"  speakers failed: {message}", flush=True)

    # Spool.close → finish_spool: note the raw file's size and time the compaction.
    real_finish = spool_mod.finish_spool

    def finish_spool(folder, compact=True, keep=True):
        raw = Path(folder) / spool_mod.RAW
        result.raw_bytes_before_compaction = raw.stat().st_size if raw.exists() else 0
        t = time.perf_counter()
        try:
            return real_finish(folder, compact=compact, keep=keep)
        finally:
            result.compaction_s = time.perf_counter() - t

    spool_mod.finish_spool = finish_spool
    # Samples go into an array made (and touched) up front: a list growing for hours would be
    # a leak of the benchmark's own, ~20 MB in a 30-minute run sampled every 20 ms.
    interval = max(0.02, 0.25 / speed)  # at least 4 samples a second of audio
    rows = int(2 * seconds / speed / interval) + 2000
    table = np.full((rows, 3), np.nan)  # audio_s, RSS bytes, lag_s
    count = 0
    stop = threading.Event()
    store = SessionStore.open(home / "notetaker.db")
    source = FileSource.open(wav, realtime=True, speed=speed)
    recorder = None

    def sample() -> None:  # RSS and the lag (finer than progress events), by audio time
        nonlocal count
        while not stop.wait(interval) and count < rows:
            lag = np.nan
            if recorder is not None and recorder.session_id is not None:
                lag = recorder._progress().lag_s
            table[count] = (source.position_s, rss_bytes(), lag)
            count += 1

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        recorder = Recorder(store, engine, source, title="long run", realtime=True, listeners=[Lag()],
                            spool_dir=home / "sessions", keep_audio=True, speakers=make_speakers(diarize))
        sampler.start()
        t0 = time.perf_counter()
        rec = recorder.run()
        result.wall_s = time.perf_counter() - t0
    finally:
        stop.set()
        spool_mod.finish_spool = real_finish
        source.close()
        store.close()
    result.status, result.finals, result.rtf = rec.status, rec.finals, rec.progress.rtf
    if recorder.speakers is not None:
        d = next(iter(recorder.speakers.diarizers.values()))
        result.diarize_kept_mb, result.diarize_skipped_s = d.log.nbytes / (1 << 20), d.skipped_s
        result.speakers = len(store_speakers(home, rec.session_id))
    result.frames_fed = int(round(rec.duration_s * RATE))
    reader = open_spool(home / "sessions" / str(rec.session_id))
    result.frames_spooled = result.flac_frames = reader.frames
    result.flac_bytes = reader.path.stat().st_size
    half = seconds / 2
    samples = [(float(at), int(r)) for at, r, _ in table[:count]]
    lags = [(float(at), float(lag)) for at, _, lag in table[:count] if lag == lag]
    result.max_lag_s = max((lag for _, lag in lags), default=0.0)
    result.max_lag_second_half_s = max((lag for at, lag in lags if at >= half), default=0.0)
    result.end_lag_s = rec.progress.lag_s

    def window(a: float, b: float) -> list[int]:
        return [r for at, r in samples if a <= at < b]

    mb = 1 << 20
    # The last window ends with the audio: samples taken after it (the engine's finish, the
    # compaction) are the end of the meeting, not its steady state; reported on their own.
    ref, last = window(600, 1200), window(seconds - 600, seconds)
    after = [r for at, r in samples if at >= seconds]
    result.rss_max_mb_after_end = max(after) / (1 << 20) if after else 0.0
    if ref and last:
        result.rss_mb_10_20, result.rss_mb_last_10 = statistics.mean(ref) / mb, statistics.mean(last) / mb
        result.rss_max_mb_10_20, result.rss_max_mb_last_10 = max(ref) / mb, max(last) / mb
    for minute in range(int(seconds // 60)):
        w = window(minute * 60, (minute + 1) * 60)
        if w:
            result.rss_samples.append((minute, round(statistics.mean(w) / mb, 1)))
    if not quiet:
        print(f"  {engine_name} at {speed:g}x: {seconds / 60:.0f} min of audio in {result.wall_s:.1f} s, "
              f"max lag {result.max_lag_s:.1f} s (2nd half {result.max_lag_second_half_s:.1f}), "
              f"end lag {result.end_lag_s:.1f} s, RTF {result.rtf:.3f}{'' if result.paced else ' (NOT PACED: too slow)'}",
              flush=True)
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    return result


def store_speakers(home: Path, session_id: int) -> list:
    from storage import SessionStore

    with SessionStore.open(home / "notetaker.db") as store:
        return store.speakers(session_id)


def calibrate(engine_name: str, workdir: Path, engine) -> float:
    """The highest speed in SPEEDS at which a CALIBRATE_S trial keeps up."""
    seconds = CALIBRATE_S[engine_name]
    for speed in SPEEDS[engine_name]:
        r = run(engine_name, seconds, speed, workdir,
                engine=engine if engine_name == "whisper" else None)
        if r.kept_up and r.status == "complete":
            return speed
    return SPEEDS[engine_name][-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=["scripted", "whisper"], default="scripted")
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--speed", default="auto", help="clock speed-up, or auto (the highest that keeps up)")
    p.add_argument("--workdir", type=Path, default=None, help="where the WAV and the home go (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    p.add_argument("--diarize", choices=["none", "doubles", "models"], default="none",
                   help="live speaker labels too (see the module's docstring)")
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="notetaker-long-run-"))
    engine = make_engine("whisper", 0) if args.engine == "whisper" else None  # loaded once
    if args.speed == "auto":
        print(f"finding the highest speed {args.engine} keeps up with ({CALIBRATE_S[args.engine]:.0f} s trials):")
        speed = calibrate(args.engine, workdir, engine)
        print(f"-> {speed:g}x")
    else:
        speed = float(args.speed)
    seconds = args.hours * 3600
    print(f"long run: {args.hours:g} h of audio at {speed:g}x ({seconds / speed / 60:.1f} min of wall time expected)")
    r = run(args.engine, seconds, speed, workdir, engine=engine, diarize=args.diarize)
    print(f"  RSS minutes 10-20: mean {r.rss_mb_10_20:.1f} MB (max {r.rss_max_mb_10_20:.1f}); "
          f"last 10 minutes: mean {r.rss_mb_last_10:.1f} MB (max {r.rss_max_mb_last_10:.1f}); "
          f"change {100 * r.rss_change:+.2f} %; max while ending (finish, compaction) {r.rss_max_mb_after_end:.1f} MB")
    print(f"  frames: file {r.frames_file:,}, spooled {r.frames_spooled:,}, fed {r.frames_fed:,}, "
          f"dropped {r.dropped_frames}")
    print(f"  raw spool before compaction {r.raw_bytes_before_compaction:,} B "
          f"(expected {2 * r.frames_file:,}); FLAC {r.flac_bytes:,} B "
          f"({r.flac_bytes / max(1, r.raw_bytes_before_compaction):.0%}), compacted and verified in "
          f"{r.compaction_s:.1f} s")
    print(f"  {r.finals} finals, status {r.status}")
    if r.diarize != "none":
        print(f"  speakers ({r.diarize}): {r.speakers} labels; kept for the offline pass {r.diarize_kept_mb:.1f} MB; "
              f"audio skipped (behind) {r.diarize_skipped_s:.1f} s")
    checks = r.checks()
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if args.json:
        args.json.write_text(json.dumps({**asdict(r), "checks": checks}, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
