"""TUI responsiveness: event-loop lag of the real app while Whisper tiny.en transcribes a
real-time paced recording, alone and while the person types notes, vs the same app idle,
side by side. Goal: p99 <= 50 ms on both busy sides.

    python bench/tui_latency.py [--speech FILE] [--interval-ms 20] [--size 120x40]

Each side runs in its own process on a pseudo-terminal (so Textual really renders and
writes every frame, which headless mode skips), with a private data home:
  * transcribing: `notetaker record` in-process: the live screen, the bundled Whisper
    tiny.en on the compute thread, the file played at 1x speed (default: the twelve espeak
    test sentences joined with 0.6 s pauses, about 52 s); measured from the first second
    of recording until the file has been played;
  * typing: the same meeting, while keystrokes are written to the pseudo-terminal as a
    person types notes: `n` opens the notes pane, then a character every 80-120 ms and
    Enter about every 40 characters (each Enter saves a note line), for the whole run;
    afterwards the data home's `notes` table must hold the lines typed (proof that the
    keys really reached the app);
  * idle: the app on the meetings screen (no meeting), for the same length of time.
A probe task on Textual's event loop sleeps `interval` and records how late it wakes
(actual - expected): the time a keypress or a partial would wait before the UI sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
__import__("asr")  # BLAS set-up before numpy loads, as the product does

GOAL_P99_MS = 50.0
SIDES = ("idle", "transcribing", "typing")
BUSY = ("transcribing", "typing")
LABELS = {"idle": "idle", "transcribing": "transcribing", "typing": "+typing notes"}
# What the typist types: lower-case words and spaces only (no key the live screen binds
# matters while the note box has focus, but nothing exotic either).
WORDS = ("action item priya sends the cloud cost breakdown by friday decision the launch moves "
         "to april ask about the budget for next quarter follow up with the team on hiring "
         "check the numbers again before the review").split()


def default_speech(folder: Path) -> Path:
    """The espeak test sentences joined with pauses, as one 16 kHz file."""
    import numpy as np
    import soundfile as sf

    parts = []
    for clip in sorted((ROOT / "tests" / "fixtures" / "speech").glob("*.flac")):
        audio, rate = sf.read(clip, dtype="float32")
        assert rate == 16_000, clip
        parts += [audio, np.zeros(int(0.6 * rate), np.float32)]
    path = folder / "meeting.wav"
    sf.write(path, np.concatenate(parts), 16_000)
    return path


# -- one side, inside the pseudo-terminal --------------------------------------------------


def run_side(side: str, speech: Path, seconds: float, interval: float, out: Path) -> None:
    import asyncio

    from notetaker.audio import FileSource
    from notetaker.config import load_settings
    from notetaker.tui.app import make_app
    from notetaker.cli.tui import build_deps
    from notetaker.prepare import fetch_engine_model
    from notetaker.tui.screens.live import LiveScreen
    from storage import SessionStore

    settings = load_settings()
    live = side in BUSY
    label = fetch_engine_model(settings)
    store = SessionStore.open(settings.db_path)
    deps = build_deps(settings, store, title="bench", realtime=True, engine_label=label,
                      source_factory=lambda: FileSource.open(speech, realtime=True, speed=1.0))
    app = make_app(deps, live=live)
    lags: list[float] = []
    ready, stop = out.with_suffix(".ready"), out.with_suffix(".stop")

    async def probe() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(interval)
            lags.append(time.perf_counter() - t - interval)

    async def until(condition, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there in time")
            await asyncio.sleep(0.05)

    def screen() -> LiveScreen | None:
        return next((s for s in app.screen_stack if isinstance(s, LiveScreen)), None)

    async def main() -> dict:
        runner = asyncio.create_task(app.run_async())
        await until(lambda: app.is_running and app.screen_stack, 60)
        info: dict = {}
        if live:
            await until(lambda: screen() is not None and screen().state == "recording", 120)
            await asyncio.sleep(1.0)  # the engine's first window: not the steady state
        task = asyncio.create_task(probe())
        t0 = time.perf_counter()
        ready.write_text("go")  # the typist (the parent) starts now
        if live:
            await until(lambda: screen().state in ("finished", "failed"), seconds + 600)
            info["finals"] = len(screen().query(".final"))
            p = screen().progress
            info["rtf"] = p.rtf if p else None
            info["lag_at_end_s"] = p.lag_s if p else None
            info["state"] = screen().state
        else:
            await asyncio.sleep(seconds)
        task.cancel()
        info["measured_s"] = time.perf_counter() - t0
        if side == "typing":
            stop.write_text("stop")  # the typist stops; let the last keys and saves land
            await asyncio.sleep(1.0)
            await until(lambda: not [w for w in app.workers if w.group == "notes" and not w.is_finished], 30)
            info["notes_shown"] = len(screen().query(".note"))
            info["focused"] = type(app.focused).__name__ if app.focused else None
        app.exit()
        await runner
        return info

    info = asyncio.run(main())
    store.close()
    out.write_text(json.dumps({"side": side, "lags": lags, "db": str(settings.db_path), **info}))


# -- the parent: one pseudo-terminal per side -----------------------------------------------


class Typist:
    """Types notes into the pseudo-terminal like a fast person: once the app says it is
    measuring (`ready` exists), `n` to open the notes pane, then a character every 80-120 ms
    and Enter after the word that reaches ~40 characters, until `stop` exists."""

    def __init__(self, ready: Path, stop: Path, seed: int = 18) -> None:
        import random

        self.ready, self.stop, self.rng = ready, stop, random.Random(seed)
        self.keys = 0  # characters typed (Enter included, `n` not)
        self.lines: list[str] = []  # the note lines sent with Enter
        self.error: str | None = None

    def pause(self) -> None:
        time.sleep(self.rng.uniform(0.080, 0.120))

    def __call__(self, master: int, done: threading.Event) -> None:
        try:
            while not self.ready.exists():
                if done.wait(0.05):
                    return
            os.write(master, b"n")  # open the notes pane and focus its input
            time.sleep(0.3)
            line = ""
            while not self.stop.exists() and not done.is_set():
                if len(line) >= 40:
                    os.write(master, b"\r")
                    self.lines.append(line.strip())
                    line = ""
                else:
                    word = self.rng.choice(WORDS)
                    chunk = word if not line else " " + word
                    for ch in chunk:
                        if self.stop.exists() or done.is_set():
                            break
                        os.write(master, ch.encode())
                        line += ch
                        self.keys += 1
                        self.pause()
                    continue
                self.keys += 1
                self.pause()
        except OSError as e:
            self.error = str(e)


def in_pty(args: list[str], env: dict, cols: int, rows: int, timeout: float, typist: Typist | None = None) -> int:
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                            close_fds=True)
    os.close(slave)
    tail = bytearray()

    def drain() -> None:  # a terminal that reads everything at once, like a fast emulator
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            tail.extend(data)
            del tail[:-4096]

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    done = threading.Event()
    typing = threading.Thread(target=typist, args=(master, done), daemon=True) if typist else None
    if typing:
        typing.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    done.set()
    if typing:
        typing.join(timeout=5)
    reader.join(timeout=5)
    os.close(master)
    if rc != 0:
        sys.stderr.write(tail.decode("utf-8", "replace")[-2000:] + "\n")
    return rc


def side(name: str, speech: Path, seconds: float, args, tmp: Path) -> dict:
    out = tmp / f"{name}.json"
    home = tmp / f"home-{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTETAKER_", "HF_"))}
    env.update(NOTETAKER_HOME=str(home), HF_HUB_OFFLINE="1", HF_HOME=str(tmp / "hf"), TERM="xterm-256color",
               COLORTERM="truecolor", PYTHONPATH=str(ROOT))
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    cmd = [sys.executable, __file__, "--side", name, "--speech", str(speech), "--seconds", str(seconds),
           "--interval-ms", str(args.interval_ms), "--out", str(out)]
    typist = Typist(out.with_suffix(".ready"), out.with_suffix(".stop")) if name == "typing" else None
    rc = in_pty(cmd, env, cols, rows, timeout=seconds + 900, typist=typist)
    if rc != 0 or not out.exists():
        raise SystemExit(f"the {name} side failed (exit {rc})")
    result = json.loads(out.read_text())
    if typist is not None:
        result.update(typed_keys=typist.keys, typed_lines=typist.lines, typist_error=typist.error,
                      stored_notes=stored_notes(Path(result["db"])))
    return result


def stored_notes(db: Path) -> list[str]:
    """The note lines in the data home's store, in the order they were typed."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [text for (text,) in con.execute("SELECT text FROM notes ORDER BY t_s, id")]
    finally:
        con.close()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speech", type=Path, help="audio file to transcribe (default: the espeak sentences, ~52 s)")
    p.add_argument("--interval-ms", type=float, default=20.0, help="probe timer period")
    p.add_argument("--size", default="120x40", help="terminal COLSxROWS")
    p.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # inside the pseudo-terminal
    p.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side:
        run_side(args.side, args.speech, args.seconds, args.interval_ms / 1000, args.out)
        return

    from notetaker.audio import open_audio

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        speech = args.speech or default_speech(tmp)
        with open_audio(speech) as audio:
            audio_s = audio.duration_s
        print(f"{speech.name}: {audio_s:.1f} s of speech at 1x; terminal {args.size} (pty); "
              f"probe every {args.interval_ms:g} ms; {os.cpu_count()} CPUs", flush=True)
        load = [os.getloadavg()[0]]
        busy = side("transcribing", speech, audio_s, args, tmp)
        load.append(os.getloadavg()[0])
        typing = side("typing", speech, audio_s, args, tmp)
        load.append(os.getloadavg()[0])
        idle = side("idle", speech, busy["measured_s"], args, tmp)
        load.append(os.getloadavg()[0])

    rows = {"idle": idle, "transcribing": busy, "typing": typing}
    ms = {k: [1000 * v for v in r["lags"]] for k, r in rows.items()}
    head = "".join(f"{LABELS[k]:>15}" for k in SIDES) + "".join(f"{k[:2] + '/idle':>8}" for k in BUSY)
    print(f"\n{'event-loop lag':<16}{head}")
    print(f"{'samples':<16}" + "".join(f"{len(ms[k]):>15}" for k in SIDES))
    for label, f in (("p50 ms", lambda v: pct(v, 50)), ("p90 ms", lambda v: pct(v, 90)),
                     ("p95 ms", lambda v: pct(v, 95)), ("p99 ms", lambda v: pct(v, 99)), ("max ms", max),
                     ("mean ms", statistics.fmean)):
        vals = {k: f(ms[k]) for k in SIDES}
        ratios = "".join(f"{vals[k] / vals['idle'] if vals['idle'] > 0 else float('inf'):>7.1f}x" for k in BUSY)
        print(f"{label:<16}" + "".join(f"{vals[k]:>15.1f}" for k in SIDES) + ratios)
    print()
    for k in BUSY:
        r = rows[k]
        over = sum(v > GOAL_P99_MS for v in ms[k])
        print(f"{LABELS[k]}: {r['finals']} finals shown, RTF {r['rtf']:.2f}, {r['lag_at_end_s']:.1f} s behind "
              f"at the end, {r['measured_s']:.0f} s measured, state {r['state']}; {over} wake-ups over "
              f"{GOAL_P99_MS:g} ms")
    typed, stored = typing["typed_lines"], typing["stored_notes"]
    enters = len(typed)
    notes_ok = abs(len(stored) - enters) <= 1 and stored == typed[:len(stored)]
    print(f"typing: {typing['typed_keys']} keys typed ({typing['typed_keys'] / typing['measured_s']:.1f}/s), "
          f"{enters} Enters; notes table: {len(stored)} lines stored, {typing.get('notes_shown')} shown in the pane; "
          f"stored lines {'match' if stored == typed[:len(stored)] else 'DO NOT match'} the typed ones"
          + (f"; typist error: {typing['typist_error']}" if typing["typist_error"] else ""))
    print(f"load average (1 min) before / after transcribing / after typing / after idle: "
          f"{' / '.join(f'{v:.2f}' for v in load)} (other processes on this machine show up as lag on every side)")
    verdicts = {}
    for k in BUSY:
        p99 = pct(ms[k], 99)
        verdicts[k] = p99 <= GOAL_P99_MS
        print(f"goal p99 <= {GOAL_P99_MS:g} ms, {LABELS[k]}: {'PASS' if verdicts[k] else 'FAIL'} ({p99:.1f} ms)")
    print(f"typed notes stored: {'PASS' if notes_ok else 'FAIL'} ({len(stored)} of {enters} Enters)")
    print(json.dumps({k: {"p50_ms": round(pct(v, 50), 2), "p95_ms": round(pct(v, 95), 2), "p99_ms": round(pct(v, 99), 2),
                          "max_ms": round(max(v), 2), "samples": len(v)} for k, v in ms.items()}))
    if not notes_ok:
        raise SystemExit("the typed notes did not reach the store: the typing side did not measure typing")

if __name__ == "__main__":
    main()
