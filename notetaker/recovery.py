"""Recovering interrupted meetings: transcribe the spooled audio the crash left unheard.

A meeting whose process died is `interrupted` (SessionStore.recover). Its finals up to
the crash are saved; its audio is in the spool (`sessions/<id>/audio.raw`). For each
channel, recovery takes the end t of the last saved final and transcribes the spool
from there to the end with the meeting's engine in offline mode. Where the audio just
after t is no pause (a word may be cut there) it starts OVERLAP_S earlier, so the word
is heard whole, and drops what that overlap hears again: new finals centred before t,
and leading words that repeat the last final's. The spool is played through the
`Recorder` (a `SpoolSource`, and a `Continuation` that continues the meeting): the new finals
are appended to the same meeting (seq continues, times on the meeting's timeline), the
meeting is marked complete, and its spool compacted.

A meeting transcribed from a file (`transcribe FILE`, `record --input FILE`) goes on past
the spool to the file's end while the file is still there and is the same recording
(`SpoolThenFile`); a file gone or changed is said in one line, and the meeting recovered
to the spool's end.

Running it again adds nothing: a complete meeting is left alone, and a recovery that
was itself cut short resumes from its own last final.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from asr.base import Engine, Final, SessionOptions
from asr.vad import as_frames, frame_db
from storage import SegmentRecord, SessionRecord, SessionStore
from storage.export import clock

from notetaker.audio import AudioError
from notetaker.audio.file import SHORTFALL_S, AudioFile, open_audio, path_text
from notetaker.audio.spool_source import SpoolSource, SpoolThenFile
from notetaker.channels import Continuation
from notetaker.errors import one_line
from notetaker.recorder import Progress, Recorder, RecorderListener
from notetaker.spool import (
    WAITING,
    SpoolError,
    SpoolReader,
    finish_spool,
    open_spool,
    parked_finals,
    spool_folder,
    store_label,
)

OVERLAP_S = 0.3  # re-heard before the last final, so a word cut at the boundary is whole
FEED_BLOCK_S = 30.0  # spool audio is read and fed in pieces this long: memory stays flat
MAX_DEDUP_WORDS = 4  # a new final that starts inside the overlap loses words the last final ended with
PAUSE_S = 0.09  # quiet this long right after the last final: it ended at a pause
PAUSE_DB = 8.0  # quiet: below the local noise floor (10th percentile of 30 ms frames) + this
SILENCE_DBFS = -60.0  # ... or below this, whatever the floor


class RecoveryError(Exception):
    """A meeting that cannot be recovered, and why: one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class Recoverable:
    """An interrupted meeting and what its spool holds."""

    session: SessionRecord
    audio_s: float | None  # spooled audio; None: there is none
    after_last_final_s: float  # audio after the last saved final (the most of any channel)
    problem: str | None = None  # why it cannot be recovered ("no audio to recover: ...")

    @property
    def recoverable(self) -> bool:
        return self.problem is None


@dataclass
class RecoveryResult:
    session_id: int
    added: list[SegmentRecord] = field(default_factory=list)
    from_s: dict[str | None, float] = field(default_factory=dict)  # per stored channel label: where it resumed
    audio_s: float = 0.0  # the meeting's duration now: the spool's length, or its file's
    file_note: str | None = None  # one line: the meeting came from a file, not played to its end (gone, changed)
    already_complete: bool = False  # nothing to do: the meeting was complete
    spool_error: str | None = None  # the transcript is complete but the spool could not be compacted
    speakers_note: str | None = None  # one line: what finding speakers did (label_speakers), or why it did not


@dataclass(frozen=True)
class _Resume:
    index: int  # column in the spool
    label: str | None  # stored channel label
    last_end: float  # t: end of the last saved final of this channel (0 if none)
    last_text: str
    start: float  # where transcription resumes: t at a pause, else max(0, t - OVERLAP_S)


def _resume_points(store: SessionStore, session_id: int, reader: SpoolReader, listen: bool = True) -> list[_Resume]:
    """Per spool channel, its last saved final and where to resume; `listen=False` skips
    looking at the audio (resume at t), for listings."""
    segments = store.segments(session_id)
    single = len(reader.channels) == 1
    out = []
    for i, name in enumerate(reader.channels):
        label = store_label(name)
        # One channel: every saved final is on it, whatever label it was stored with.
        mine = segments if single else [s for s in segments if s.channel == label]
        last = max(mine, key=lambda s: (s.end_s, s.seq), default=None)
        t = last.end_s if last else 0.0
        if single and last is not None:
            label = last.channel  # continue as the meeting was stored
        cut = last is not None and listen and not _pause_after(reader, i, t)
        start = max(0.0, t - OVERLAP_S) if cut else t
        out.append(_Resume(i, label, t, last.text if last else "", start))
    return out


def _pause_after(reader: SpoolReader, channel: int, t: float) -> bool:
    """Is the audio just after t quiet? Then the last final ended at a pause and nothing
    is cut there: resuming at t re-hears nothing (0.3 s of a finished word, heard again on
    its own, comes back as a duplicate or an invented word). Quiet: every 30 ms frame of
    PAUSE_S below the local noise floor + PAUSE_DB, or below SILENCE_DBFS."""
    rate = reader.sample_rate
    frame = int(0.03 * rate)
    around = reader.read(max(0.0, t - 10.0), t + 10.0)
    around = around[:, channel] if around.ndim == 2 else around
    a = int(round((t - max(0.0, t - 10.0)) * rate))
    tail = around[a:a + int(PAUSE_S * rate)]
    if len(tail) < frame:
        return True  # the spool ends here: nothing after t to cut
    floor = float(np.percentile(frame_db(as_frames(around, frame)), 10))
    return bool(np.all(frame_db(as_frames(tail, frame)) < max(floor + PAUSE_DB, SILENCE_DBFS)))


def inspect_meeting(store: SessionStore, sessions_dir: Path, session: SessionRecord) -> Recoverable:
    try:
        reader = open_spool(spool_folder(sessions_dir, session.id))
    except SpoolError as e:
        return Recoverable(session, None, 0.0, f"no audio to recover ({e})")
    points = _resume_points(store, session.id, reader, listen=False)
    after = max(max(0.0, reader.seconds - p.last_end) for p in points)
    return Recoverable(session, reader.seconds, after)


def find_recoverable(store: SessionStore, sessions_dir: Path) -> list[Recoverable]:
    """Every interrupted meeting, newest first, with what its spool holds."""
    return [inspect_meeting(store, sessions_dir, s) for s in store.interrupted_sessions()]


def recovery_options(session: SessionRecord, engine: Engine, vocabulary: tuple[str, ...] = ()) -> SessionOptions:
    delay = session.delay_ms if engine.capabilities.delay_control and session.delay_ms else None
    return SessionOptions(language=session.language, partials=False, delay_ms=delay, vocabulary=vocabulary)


_WORD = re.compile(r"[\w']+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _strip_repeat(text: str, before: str) -> str:
    """`text` without its first words when they repeat the last words of `before`
    (the overlap re-heard them): the longest such run of up to MAX_DEDUP_WORDS."""
    new, old = _words(text), _words(before)
    for n in range(min(MAX_DEDUP_WORDS, len(new), len(old)), 0, -1):
        if new[:n] == old[-n:]:
            spans = list(_WORD.finditer(text))
            rest = text[spans[n - 1].end():]
            return rest.lstrip(" ,.;:!?-—").strip()
    return text


def _keep(point: _Resume, final: Final) -> Final | None:
    """The final (on the meeting's timeline) to store, or None when it was already saved
    before the crash."""
    start, end = final.start, final.end
    if end <= point.last_end or (start + end) / 2 < point.last_end:
        return None  # heard again in the overlap: the saved final has it
    text = final.text
    if start < point.last_end and point.last_text:
        text = _strip_repeat(text, point.last_text)
    if not text.strip():
        return None
    words = final.words if text == final.text else ()
    return Final(text, round(start, 3), round(end, 3), words=words, flags=final.flags)


@contextmanager
def _exclusive(folder: Path, session_id: int):
    """One recovery of a meeting at a time (two at once would both append the same words)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; recovery is rare and manual
        yield
        return
    try:
        fd = os.open(folder / "recover.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise RecoveryError(f"cannot recover meeting {session_id}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RecoveryError(f"meeting {session_id} is being recovered by another notetaker") from None
        yield
    finally:
        os.close(fd)
        try:
            os.unlink(folder / "recover.lock")
        except OSError:
            pass


def recover_session(store: SessionStore, sessions_dir: Path, session_id: int, engine: Engine | Callable[[], Engine],
                    *, keep_audio: bool = True, vocabulary: tuple[str, ...] = (),
                    on_final: Callable[[SegmentRecord], None] | None = None,
                    on_progress: Callable[[float, float], None] | None = None,
                    label_speakers: Callable[[SpoolReader], str] | None = None) -> RecoveryResult:
    """Transcribe what meeting `session_id` left unheard, append it, mark it complete.

    `engine` may be a factory: it is called only when there is audio to transcribe.
    `vocabulary`: the user's terms (Settings.vocabulary), as a live meeting would have had them.
    `on_progress(done_s, total_s)` reports spool seconds handled. `label_speakers(reader)`,
    once the transcript is complete and before the spool is compacted (or dropped), labels
    the whole meeting's speakers from its audio and says what it did in one line
    (RecoveryResult.speakers_note); it failing costs the labels only. RecoveryError (one
    line) when the meeting has no audio or is still recording; a complete meeting is left as
    is.
    """
    session = store.get_session(session_id)
    folder = spool_folder(sessions_dir, session_id)
    if session.status == "complete":
        return RecoveryResult(session_id, audio_s=session.duration_s or 0.0, already_complete=True)
    if session.status == "recording":
        raise RecoveryError(f"meeting {session_id} is still recording (its notetaker is running)")
    try:
        reader = open_spool(folder)
    except SpoolError as e:
        raise RecoveryError(f"meeting {session_id} has no audio to recover: {e}") from None
    if reader.sample_rate != 16000:
        raise RecoveryError(f"meeting {session_id}: the spool is at {reader.sample_rate} Hz, not 16000")
    _check_layout(store, session_id, reader)
    result = RecoveryResult(session_id, audio_s=reader.seconds)
    with _exclusive(folder, session_id):
        session = store.get_session(session_id)  # another recovery may have finished it meanwhile
        if session.status == "complete":
            result.already_complete = True
            return result
        _store_parked(store, folder, session_id, result, on_final)
        audio, result.file_note = _source_file(session, reader)
        try:
            end_s = audio.duration_s if audio is not None else reader.seconds
            points = [p for p in _resume_points(store, session_id, reader) if p.start < end_s - 0.01]
            result.from_s = {p.label: p.start for p in points}
            if points:
                eng = engine if isinstance(engine, Engine) else engine()
                _feed_recorder(store, session, eng, reader, points, result, on_final, on_progress, audio,
                               vocabulary=vocabulary)
            else:
                store.finish_session(session_id, "complete", duration_s=round(reader.seconds, 3))
        finally:
            if audio is not None:
                audio.close()
        if label_speakers is not None:
            result.speakers_note = _label_speakers(label_speakers, folder)
    try:
        finish_spool(folder, compact=True, keep=keep_audio)
    except SpoolError as e:
        result.spool_error = str(e)
    return result


def _label_speakers(label: Callable[[SpoolReader], str], folder: Path) -> str:
    try:
        return label(open_spool(folder))
    except Exception as e:  # the transcript is complete and saved: only the labels are missing
        return f"speaker labels were not found: {one_line(e)}"


def _source_file(session: SessionRecord, reader: SpoolReader) -> tuple[AudioFile | None, str | None]:
    """The file a meeting was transcribed from, when it is still there and runs past the
    spool (then recovery goes on to its end), and a line on why not where it cannot.

    The file's size and time were not recorded, so it must decode and be no shorter than
    the spool; SpoolThenFile also checks its audio before the spool's end is the spool's."""
    if not session.audio_path or len(reader.channels) != 1:
        return None, None  # a live capture: the spool is all there is
    path = Path(session.audio_path)
    until = f"recovered to the end of its spool ({clock(reader.seconds)}), not to the file's end"
    if not path.is_file():
        return None, f"its audio file {path_text(path)} is gone: {until}"
    try:
        audio = open_audio(path)
    except AudioError as e:
        return None, f"its audio file cannot be read ({e}): {until}"
    if audio.duration_s < reader.seconds - SHORTFALL_S:
        audio.close()
        return None, f"its audio file {path_text(path)} is shorter than the audio spooled (it was changed): {until}"
    if audio.duration_s <= reader.seconds + 0.01:
        audio.close()
        return None, None  # the spool has all of it
    return audio, None


def _check_layout(store: SessionStore, session_id: int, reader: SpoolReader) -> None:
    """The finals saved live name the channels they came from: a spool.json that names
    others (edited or damaged) would read the interleaved audio wrongly."""
    names = {store_label(c) for c in reader.channels}
    stray = {s.channel for s in store.segments(session_id)} - names
    if (stray and len(reader.channels) > 1) or stray - {None}:
        raise RecoveryError(f"meeting {session_id}: its spool.json names a channel layout "
                            f"({', '.join(reader.channels)}) that does not match the finals saved live; "
                            "it was edited or damaged")


def _store_parked(store: SessionStore, folder: Path, session_id: int, result: RecoveryResult,
                  on_final: Callable[[SegmentRecord], None] | None) -> None:
    """Finals the store refused during the meeting (the recorder parked them beside the
    spool) are stored first, in order, each once; then the file goes."""
    parked = parked_finals(folder)
    have = {(round(s.start_s, 3), round(s.end_s, 3), s.text) for s in store.segments(session_id)} if parked else set()
    for channel, start, end, text, flags in parked:
        key = (round(start, 3), round(end, 3), text)
        if key in have:
            continue
        seg = store.add_segment(session_id, text, key[0], key[1], channel=channel, flags=flags)
        have.add(key)
        result.added.append(seg)
        if on_final is not None:
            on_final(seg)
    (folder / WAITING).unlink(missing_ok=True)


class _Reporter(RecorderListener):
    """The recorder's events as recovery's callbacks: each stored final, spool seconds handled."""

    def __init__(self, result: RecoveryResult, origin_s: float, total_s: float,
                 on_final: Callable[[SegmentRecord], None] | None,
                 on_progress: Callable[[float, float], None] | None) -> None:
        self.result, self.origin_s, self.total_s = result, origin_s, total_s
        self._on_final, self._on_progress = on_final, on_progress

    def on_final(self, final: Final, segment: SegmentRecord) -> None:
        self.result.added.append(segment)
        if self._on_final is not None:
            self._on_final(segment)

    def on_progress(self, progress: Progress) -> None:
        if self._on_progress is not None:
            self._on_progress(min(self.total_s, self.origin_s + progress.audio_s), self.total_s)


def _feed_recorder(store: SessionStore, session: SessionRecord, engine: Engine, reader: SpoolReader,
                   points: list[_Resume], result: RecoveryResult,
                   on_final: Callable[[SegmentRecord], None] | None,
                   on_progress: Callable[[float, float], None] | None, audio: AudioFile | None = None,
                   vocabulary: tuple[str, ...] = ()) -> None:
    """The spool through the recorder: every channel from its own resume point, read in
    blocks of FEED_BLOCK_S; each block's finals are stored in time order across channels
    (so seq follows time, as it did live) before the next block is read: a recovery cut
    short keeps them and the next one resumes after them. Complete at a clean end."""
    continuation = Continuation(session.id, tuple(p.start for p in points),
                                keep=tuple(partial(_keep, p) for p in points))
    source = SpoolSource(reader, start_s=min(continuation.start_s), columns=[p.index for p in points],
                         labels=[p.label for p in points], block_s=FEED_BLOCK_S)
    if audio is not None:  # then the rest of the file the meeting came from
        source = SpoolThenFile(source, audio, block_s=FEED_BLOCK_S)
    total_s = audio.duration_s if audio is not None else reader.seconds
    reporter = _Reporter(result, continuation.origin / reader.sample_rate, total_s, on_final, on_progress)
    recorder = Recorder(store, engine, source, title=session.title, options=recovery_options(session, engine, vocabulary),
                        listeners=[reporter], continues=continuation)
    done = recorder.run()
    if isinstance(source, SpoolThenFile):
        result.audio_s = done.duration_s
        if source.problem:
            result.file_note = f"{source.problem}: recovered to the end of its spool ({clock(reader.seconds)})"
    if done.waiting:  # not parked (no spool is written): the next recovery hears them again
        n = done.waiting
        raise RecoveryError(f"meeting {session.id} stays interrupted: the store did not take {n} recovered "
                            f"final{'s' if n != 1 else ''} ({recorder.store_problem}); run recover again")
    if done.status != "complete" or recorder.store_problem:  # the data home went, or the row was not updated
        why = recorder.capture_error or recorder.store_problem or "the recovery was cut short"
        raise RecoveryError(f"meeting {session.id} stays interrupted: {why}")
