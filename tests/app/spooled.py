"""Helpers for spool and recovery tests: a speech clip made from the fixture sentences, and an
interrupted meeting with its spooled audio, made without running a recorder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from notetaker.spool import Spool, spool_folder
from storage import SessionStore

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "fixtures" / "speech"
RATE = 16_000


def sentences() -> dict[str, str]:
    lines = (SPEECH / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines if line.strip())


def speech_clip(names: list[str], gap_s: float = 0.7) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The named fixture clips (es01…) one after another with `gap_s` of silence after each;
    returns the audio and (name, start_s, end_s) of each sentence."""
    parts, spans, at = [], [], 0
    for name in names:
        audio, rate = sf.read(SPEECH / f"{name}.flac", dtype="float32")
        assert rate == RATE
        spans.append((name, at / RATE, (at + len(audio)) / RATE))
        parts += [audio, np.zeros(int(gap_s * RATE), np.float32)]
        at += len(audio) + int(gap_s * RATE)
    return np.concatenate(parts), spans


def write_clip(path: Path, names: list[str], gap_s: float = 0.7) -> tuple[Path, list[tuple[str, float, float]]]:
    audio, spans = speech_clip(names, gap_s)
    sf.write(path, audio, RATE, subtype="PCM_16")
    return path, spans


def interrupted_meeting(store: SessionStore, sessions_dir: Path | None, audio: np.ndarray | None,
                        finals: list[tuple[str, float, float]] | list[tuple[str, float, float, str | None]],
                        channels: tuple[str, ...] = ("mono",), title: str = "Standup",
                        engine: tuple[str, str] = ("whisper", "tiny.en"), compact: bool = False) -> int:
    """A meeting as a crash leaves it: `finals` saved, `audio` in a raw spool (none if
    `audio` is None), status interrupted."""
    sid = store.create_session(title, *engine)
    for f in finals:
        store.add_segment(sid, f[0], f[1], f[2], channel=f[3] if len(f) > 3 else None)
    if audio is not None:
        sp = Spool.create(spool_folder(sessions_dir, sid), channels=channels)
        for i in range(0, len(audio), 1600):
            sp.append(audio[i:i + 1600])
        sp.close(compact=compact)
    store.finish_session(sid, "interrupted")
    return sid
