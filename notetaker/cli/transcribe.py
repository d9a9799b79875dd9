"""`notetaker transcribe` and `notetaker recover`: speech to text outside the TUI, printed as it
comes (plain text or JSON Lines)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from notetaker.cli.output import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    check_engine_flags,
    check_speaker_flags,
    say_speakers_off,
    write_json,
)
from notetaker.errors import one_line
from notetaker.config import Settings
from notetaker.diarization import speakers_factory
from notetaker.inert import inert
from notetaker.prepare import (
    Factories,
    context_tokens,
    load_engine,
    load_rewrite,
    open_store,
    prepare,
    session_options,
)
from notetaker.recorder import RecorderListener
from notetaker.summary import duration_text
from storage.export import clock

SAMPLE = Path(__file__).parent.parent / "data" / "sample.flac"  # the bundled recording (--sample)


class _Printer(RecorderListener):
    """Prints a recording as it happens: plain text or JSON Lines."""

    def __init__(self, as_json: bool, realtime: bool):
        self.as_json = as_json
        self.realtime = realtime
        self.tty = sys.stderr.isatty()
        self._status = False
        self._store_problem: str | None = None
        self.session_id: int | None = None

    def on_started(self, session) -> None:
        self.session_id = session.id
        if self.as_json:
            write_json({"type": "session", "event": "started", "id": session.id, "title": session.title,
                        "engine": session.engine, "model": session.model})

    def on_partial(self, partial) -> None:
        if self.as_json:
            write_json({"type": "partial", "text": partial.text, "start": partial.start, "end": partial.end})
        elif self.tty and self.realtime:
            self._status_line(f"… {partial.text}")

    def on_final(self, final, segment) -> None:
        if self.as_json:
            write_json({"type": "final", "id": segment.id, "seq": segment.seq, "text": final.text,
                        "start": final.start, "end": final.end, "speaker": segment.speaker,
                        "flags": list(final.flags)})
            return
        self._clear_status()
        flags = f"  ({', '.join(final.flags)})" if final.flags else ""
        who = f"{segment.speaker}: " if segment.speaker else ""
        print(f"[{clock(final.start, True)} → {clock(final.end, True)}] {who}{inert(final.text)}{flags}", flush=True)

    def on_cleaned(self, segments) -> None:
        if self.as_json:
            for seg in segments:
                write_json({"type": "cleaned", "id": seg.id, "seq": seg.seq, "text": seg.clean_text})

    def on_rewrite_error(self, message: str) -> None:
        self._clear_status()
        _say_cleanup_off(message, self.session_id)

    def on_speakers_error(self, message: str) -> None:
        self.say(f"speaker labels are off: {message}; the transcript goes on without them")

    def on_relabelled(self, changed: int) -> None:
        if self.as_json:
            write_json({"type": "speakers", "event": "relabelled", "segments": changed})

    def on_capture_error(self, message: str, saved: bool = True) -> None:
        if self.as_json:
            write_json({"type": "error", "message": message})
        self._clear_status()
        tail = "; everything so far is saved" if saved else ""
        print(f"notetaker: capture stopped: {message}{tail}", file=sys.stderr)

    def on_progress(self, p) -> None:
        if p.store_problem != self._store_problem:  # the store refuses finals, or takes them again
            self._store_problem = p.store_problem
            self._clear_status()
            if p.store_problem:
                print(f"notetaker: {p.waiting} finals waiting: {p.store_problem}; capture goes on and they are "
                      "stored when it lets them", file=sys.stderr, flush=True)
            else:
                print("notetaker: the waiting finals are stored", file=sys.stderr, flush=True)
        if self.as_json and self.realtime:
            write_json({"type": "progress", "audio_s": round(p.audio_s, 2), "lag_s": round(p.lag_s, 2),
                        "rtf": round(p.rtf, 3), "waiting": p.waiting, "store_problem": p.store_problem})
        elif self.tty and self.realtime and not self.as_json:
            waiting = f"  {p.waiting} finals waiting: {p.store_problem}" if p.waiting else ""
            self._status_line(f"audio {clock(p.audio_s)}  behind {p.lag_s:4.1f} s  RTF {p.rtf:.2f}{waiting}")

    def on_finished(self, result) -> None:
        p = result.progress
        if self.as_json:
            write_json({"type": "session", "event": "finished", "id": result.session_id, "status": result.status,
                        "finals": result.finals, "duration_s": round(result.duration_s, 3),
                        "compute_s": round(p.compute_s, 3), "rtf": round(p.rtf, 4), "waiting": result.waiting,
                        "waiting_file": str(result.waiting_file) if result.waiting_file else None,
                        "stopped_early": result.stopped_early})
        self._clear_status()
        if result.home_lost:
            return  # said once already, and there is no meeting to point at
        if result.waiting:
            sid = result.session_id
            if result.waiting_file:
                where = f"they are in {result.waiting_file}; `notetaker recover {sid}` stores them"
            else:
                where = (f"nor could they be written beside it; their audio is in the spool: `notetaker recover {sid}` "
                         "transcribes it again once the store takes writes")
            print(f"notetaker: {result.waiting} finals could not be stored ({p.store_problem}): {where}", file=sys.stderr)
            return
        if self.as_json:
            return
        lag = f", {p.lag_s:.1f} s behind at the end" if self.realtime else ""
        early = " (stopped before the end of the file)" if result.stopped_early else ""
        print(f"session {result.session_id} {result.status}{early}: {result.finals} segments, "
              f"{duration_text(result.duration_s)} of audio, RTF {p.rtf:.2f}{lag} "
              f"(`notetaker show {result.session_id}`)", file=sys.stderr)

    def say(self, text: str) -> None:
        """One line on stderr, clear of the status line."""
        self._clear_status()
        print(f"notetaker: {text}", file=sys.stderr, flush=True)

    def _status_line(self, text: str) -> None:
        width = 100
        sys.stderr.write("\r\x1b[2K" + text[-width:])
        sys.stderr.flush()
        self._status = True

    def _clear_status(self) -> None:
        if self._status:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self._status = False


# -- transcribe ------------------------------------------------------------------------------


def _check_decoding(args: argparse.Namespace, settings: Settings) -> None:
    from asr.base import MAX_BEAM_SIZE

    if args.windowing in (None, "vad") and args.beam_size == 1:
        return
    flag = "--windowing seek" if args.windowing == "seek" else "--beam-size"
    if (settings.engine or "whisper") != "whisper":
        raise UsageError(f"{flag} is for the whisper engine only")
    if args.realtime:
        raise UsageError(f"{flag} transcribes files, not live: drop --realtime")
    if args.beam_size > MAX_BEAM_SIZE:
        raise UsageError(f"--beam-size must be 1 to {MAX_BEAM_SIZE}")


def _windowing(args: argparse.Namespace, engine) -> str:
    """Whisper on a file: faster-whisper's seek loop, the more accurate by bench/whisper.py
    (pooled WER 16.1% vs 17.0% for VAD windows on 35 files); live or other engines: VAD."""
    if args.windowing:
        return args.windowing
    return "seek" if engine.name == "whisper" and not args.realtime else "vad"


def cmd_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    from notetaker.audio import FileSource
    from notetaker.audio.file import path_text
    from notetaker.recorder import Recorder

    if args.sample == bool(args.file):
        raise UsageError("give an audio FILE or --sample (not both)")
    path = SAMPLE if args.sample else Path(args.file)
    # Everything a user can get wrong is checked before anything is saved.
    _check_decoding(args, settings)
    if args.speed is not None and not args.realtime:  # asked for a pace that would not happen
        raise UsageError("--speed paces a file played with --realtime; without it the file is transcribed as fast "
                         "as it can be: add --realtime or drop --speed")
    check_speaker_flags(args)
    source = FileSource.open(path, realtime=args.realtime, speed=args.speed or 1.0)
    with source:
        ready = prepare(settings, speakers=args.speakers, realtime=args.realtime)
        settings, plan = ready.settings, ready.plan
        check_engine_flags(args, settings.engine)
        say_speakers_off(ready.diarization, settings)
        speakers = speakers_factory(ready.diarization, args.realtime)
        factories = Factories(settings, ready.context_tokens)
        if ready.rewrite_off:
            _say_cleanup_off(ready.rewrite_off)
        engine = factories.engine()
        store = open_store(settings)
        printer = _Printer(args.json, args.realtime)
        options = session_options(settings, partials=args.realtime, engine=engine,
                                  windowing=_windowing(args, engine), beam_size=args.beam_size)
        title = args.title or (("Sample: " if args.sample else "") + path_text(path.stem))
        recorder = Recorder(store, engine, source, title=title, options=options, realtime=args.realtime,
                            listeners=[printer], audio_path=path_text(path.resolve()),
                            spool_dir=settings.sessions_dir, keep_audio=settings.keep_audio,
                            # loaded once there is text to clean; a failure only turns cleanup off
                            rewrite_factory=lambda: factories.rewrite(ready.rewrite),
                            speakers=(lambda: speakers(source.channels)) if speakers else None)
        try:
            with _ctrl_c_ends(recorder, printer) as asked:
                result = recorder.run()
            if result.status == "complete":
                _flag_file(store, source.audio, result.session_id)
            if plan.after and result.status == "complete" and not ready.rewrite_off and not result.stopped_early:
                # A rewrite model that does not fit beside the speech model loads after it is gone.
                if recorder.rewrite is not None:
                    recorder.rewrite.close()
                del recorder, engine, factories
                _clean_after(store, settings, plan, result.session_id)
                recorder = None
        finally:
            store.close()
            if recorder is not None and recorder.rewrite is not None:
                recorder.rewrite.close()
    if result.waiting:
        return EXIT_USAGE
    if asked:  # Ctrl-C: the meeting is saved and complete, and a script still learns it was stopped
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status == "complete" else EXIT_INTERRUPTED


@contextmanager
def _ctrl_c_ends(recorder, printer: _Printer):
    """The first Ctrl-C ends the meeting as `q` does in the TUI: what was captured is
    transcribed and saved, and it is complete with that length. A second one quits at once
    (KeyboardInterrupt: the meeting stays interrupted, its spool ready for `recover`).
    Yields a list that holds True once Ctrl-C was pressed."""
    asked: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return

    def first(signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        asked.append(True)
        printer.say("stopping: saving what was heard (Ctrl-C again to quit at once)")
        recorder.stop()

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield asked
    finally:
        signal.signal(signal.SIGINT, previous)


def _say_cleanup_off(why: str, session_id: int | None = None) -> None:
    """The one line that says a rewrite backend is out of the meeting, and how to clean later."""
    print(f"notetaker: cleanup is off: {why}; the transcript is kept as heard (clean it later with "
          f"`notetaker summarize --clean {session_id or 'ID'}`)", file=sys.stderr)


def _flag_file(store, audio, session_id: int) -> None:
    """What decoding found that the transcript does not show (damage skipped, audio that ends
    before the header says, speech-level audio with no text): a warning line each and a
    `note` mark on the meeting, so it never looks silently complete."""
    from notetaker.audio.file import path_text

    recognised = any(seg.text.strip() for seg in store.segments(session_id))
    for t, text in audio.notes(recognised):
        store.add_mark(session_id, t, "note", text)
        print(f"notetaker: {path_text(audio.path)}: {text}", file=sys.stderr)


def _clean_after(store, settings: Settings, plan, session_id: int) -> None:
    """The plan's post-meeting rewrite: the speech model is gone, the LLM loads and cleans."""
    import gc

    from notetaker.summary import clean_session

    gc.collect()
    print(f"notetaker: cleaning up the text with {plan.rewrite.name} now that the speech model is unloaded",
          file=sys.stderr)
    try:
        backend = load_rewrite(settings, context_tokens=context_tokens(plan))
        try:
            clean_session(store, session_id, backend)
        finally:
            backend.close()
    except Exception as e:  # whatever a load throws: the transcript is saved, only uncleaned
        _say_cleanup_off(one_line(e), session_id)


# -- recover ---------------------------------------------------------------------------------


def cmd_recover(args: argparse.Namespace, settings: Settings) -> int:
    """`notetaker recover`: list interrupted meetings; `recover ID` / `--all`: transcribe the
    spooled audio after each one's last final into the same meeting, which becomes complete."""
    from notetaker.recovery import find_recoverable

    if args.id is not None and args.all:
        raise UsageError("give a meeting ID or --all, not both")
    with open_store(settings) as store:  # opening marks meetings whose process died as interrupted
        if args.id is None and not args.all:
            return _list_recoverable(find_recoverable(store, settings.sessions_dir), args.json)
        if args.id is not None:
            return _recover(store, settings, args, [args.id])
        todo = find_recoverable(store, settings.sessions_dir)
        for r in todo:
            if not r.recoverable:
                print(f"notetaker: meeting {r.session.id}: {r.problem}", file=sys.stderr)
        ids = [r.session.id for r in reversed(todo) if r.recoverable]  # oldest first
        if not ids:
            print("no interrupted meetings with audio to recover", file=sys.stderr)
            return EXIT_OK
        return _recover(store, settings, args, ids)


def _list_recoverable(found, as_json: bool) -> int:
    if as_json:
        for r in found:
            write_json({"id": r.session.id, "title": r.session.title, "started_at": r.session.started_at.isoformat(),
                        "audio_s": None if r.audio_s is None else round(r.audio_s, 3),
                        "after_last_final_s": round(r.after_last_final_s, 3), "recoverable": r.recoverable,
                        "problem": r.problem})
        return EXIT_OK
    if not found:
        print("no interrupted meetings", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':>5}  {'STARTED':16}  {'AUDIO':>7}  {'UNHEARD':>7}  TITLE")
    for r in found:
        started = r.session.started_at.astimezone().strftime("%Y-%m-%d %H:%M")
        if r.recoverable:
            print(f"{r.session.id:>5}  {started:16}  {duration_text(r.audio_s):>7}  {duration_text(r.after_last_final_s):>7}  "
                  f"{inert(r.session.title)}")
        else:
            print(f"{r.session.id:>5}  {started:16}  {'-':>7}  {'-':>7}  {inert(r.session.title)}  (no audio to recover)")
    if any(r.recoverable for r in found):
        print("`notetaker recover ID` (or --all) transcribes the unheard audio into the meeting", file=sys.stderr)
    return EXIT_OK


def _recover(store, settings: Settings, args: argparse.Namespace, ids: list[int]) -> int:
    from notetaker.diarization import recovery_labeller
    from notetaker.recovery import RecoveryError, recover_session

    engines: dict[tuple, object] = {}
    failed = False
    for sid in ids:
        s = store.get_session(sid)  # SessionNotFound: one line, exit 2
        name = args.engine or s.engine or settings.engine
        model = args.model or (s.model if name == s.engine else None)

        def engine(key=(name, model)):
            if key not in engines:
                engines[key] = load_engine(settings, *key)
            return engines[key]

        def show(seg) -> None:
            if args.json:
                write_json({"type": "final", "session_id": seg.session_id, "id": seg.id, "seq": seg.seq,
                            "text": seg.text, "start": seg.start_s, "end": seg.end_s, "channel": seg.channel,
                            "flags": list(seg.flags)})
            else:
                channel = f" {seg.channel}:" if seg.channel else ""
                print(f"[{clock(seg.start_s, True)} → {clock(seg.end_s, True)}]{channel} {inert(seg.text)}", flush=True)

        try:
            result = recover_session(store, settings.sessions_dir, sid, engine, keep_audio=settings.keep_audio,
                                     vocabulary=settings.vocabulary, on_final=show,
                                     label_speakers=None if args.no_diarize else recovery_labeller(settings, store, sid))
        except RecoveryError as e:
            if len(ids) == 1:
                raise UsageError(str(e)) from None
            print(f"notetaker: {e}", file=sys.stderr)
            failed = True
            continue
        resumed = min(result.from_s.values(), default=result.audio_s)
        if args.json:
            write_json({"type": "recovered", "id": sid, "status": "complete", "added": len(result.added),
                        "from_s": round(resumed, 3), "audio_s": round(result.audio_s, 3),
                        "already_complete": result.already_complete, "spool_error": result.spool_error,
                        "file_note": result.file_note, "speakers": result.speakers_note})
        elif result.already_complete:
            print(f"meeting {sid} is complete; nothing to recover", file=sys.stderr)
        else:
            print(f"meeting {sid} recovered: {len(result.added)} new segments from "
                  f"{duration_text(max(0.0, result.audio_s - resumed))} of audio after {clock(resumed)}; complete "
                  f"(`notetaker show {sid}`)", file=sys.stderr)
        if result.file_note:
            print(f"notetaker: meeting {sid}: {result.file_note}", file=sys.stderr)
        if result.speakers_note and not args.json:
            print(f"meeting {sid}: {result.speakers_note}", file=sys.stderr)
        if result.spool_error:
            print(f"notetaker: {result.spool_error}; the raw audio stays in {settings.sessions_dir / str(sid)}",
                  file=sys.stderr)
    return EXIT_USAGE if failed else EXIT_OK
