"""Playback test helpers: meetings whose audio is kept (written by the real spool, compacted to
FLAC as a clean end does), a recorder of a PulseAudio sink's monitor that is independent of
notetaker (`parec`), and how well a recording matches the audio expected in it."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from notetaker.spool import Spool
from storage import SessionStore

SPEECH = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
RATE = 16000
SOUND_DB = -40.0  # above this (RMS over 10 ms) a stretch counts as sound


def clip(name: str) -> np.ndarray:
    audio, rate = sf.read(SPEECH / f"{name}.flac", dtype="float32")
    assert rate == RATE
    return audio


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), np.float32)


@dataclass(frozen=True)
class KeptMeeting:
    session_id: int
    audio: np.ndarray  # what the spool holds: (n,) or (n, 2) for mic and system
    channels: tuple[str, ...]


def kept_meeting(home: Path, audio: np.ndarray, channels: tuple[str, ...],
                 segments: list[tuple[float, float, str, str | None]], *, compact: bool = True,
                 keep: bool = True, title: str = "Playback",
                 started_at: str = "2025-03-06T10:00:00Z") -> KeptMeeting:
    """A finished meeting in `home` whose audio went through the real spool: FLAC when
    `compact` (a clean end), else the raw spool (a meeting interrupted); none when not `keep`.
    `segments` are (start, end, text, channel)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with SessionStore.open(home / "notetaker.db") as store:
        sid = store.create_session(title, "whisper", "tiny.en", started_at=started_at)
        spool = Spool.create(home / "sessions" / str(sid), channels=channels)
        for a in range(0, len(audio), RATE):
            spool.append(audio[a:a + RATE])
        spool.close(compact=compact, keep=keep)
        for start, end, text, channel in segments:
            store.add_segment(sid, text, start, end, channel=channel)
        store.finish_session(sid, "complete" if compact else "interrupted", duration_s=len(audio) / RATE)
    stored = np.round(np.clip(audio, -1, 1) * 32768).clip(-32768, 32767) / 32768  # the spool keeps 16 bits
    return KeptMeeting(sid, stored.astype(np.float32), channels)


class Monitor:
    """Records a sink's monitor with `parec` (16 kHz mono float) from `start` to `stop`."""

    def __init__(self, pa, sink: str) -> None:
        self.pa = pa
        self.sink = sink
        self._chunks: list[bytes] = []
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> Monitor:
        self._proc = subprocess.Popen(
            ["parec", f"--device={self.pa.monitor(self.sink)}", "--raw", "--channels=1", "--format=float32le",
             f"--rate={RATE}", "--latency-msec=20"], env=self.pa.env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        time.sleep(0.4)  # the first few ms a new recording gets are lost (PLATFORM-NOTES)
        return self

    def _read(self) -> None:
        while True:
            data = os.read(self._proc.stdout.fileno(), 65536)
            if not data:
                return
            self._chunks.append(data)

    def stop(self, after_s: float = 0.6) -> np.ndarray:
        time.sleep(after_s)  # what the device still held arrives
        self._proc.terminate()
        self._proc.wait(10)
        self._reader.join(10)
        self._proc.stdout.close()
        data = b"".join(self._chunks)
        return np.frombuffer(data[: len(data) // 4 * 4], "<f4").copy()


def sounding(x: np.ndarray, frame: int = RATE // 100) -> tuple[float, float]:
    """(first, last) second of sound in `x`; (0, 0) when it is silent throughout."""
    n = len(x) // frame
    if n == 0:
        return 0.0, 0.0
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(20 * np.log10(rms + 1e-12) > SOUND_DB)
    if not len(loud):
        return 0.0, 0.0
    return loud[0] * frame / RATE, (loud[-1] + 1) * frame / RATE


def sounding_s(x: np.ndarray) -> float:
    first, last = sounding(x)
    return last - first


def match(recorded: np.ndarray, expected: np.ndarray) -> float:
    """The normalised correlation of `expected` with the best-aligned stretch of `recorded`
    (1.0: the same samples, at any delay; near 0: unrelated sound)."""
    if len(recorded) < len(expected):
        recorded = np.concatenate([recorded, np.zeros(len(expected) - len(recorded), np.float32)])
    size = 1 << (len(recorded) + len(expected)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(expected, size)), size)
    lag = int(np.argmax(corr[: len(recorded) - len(expected) + 1]))
    window = recorded[lag:lag + len(expected)].astype(np.float64)
    e = expected.astype(np.float64)
    return float(np.dot(window, e) / (np.linalg.norm(window) * np.linalg.norm(e) + 1e-12))
