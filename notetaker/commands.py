"""What each subcommand does; `cli.py` parses and handles errors."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from notetaker.cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    data_file,
    open_store,
    write_json,
)
from notetaker.config import Settings
from notetaker.inert import inert
from notetaker.recorder import RecorderListener

SAMPLE = "sample.flac"


def clock(t: float, tenths: bool = False) -> str:
    t = max(0.0, t)
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:04.1f}" if tenths else f"{int(h):02d}:{int(m):02d}:{int(s):02d}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# -- transcribe -------------------------------------------------------------------------------


class _Printer(RecorderListener):
    """Prints a recording as it happens: plain text or JSON Lines."""

    def __init__(self, as_json: bool, realtime: bool):
        self.as_json = as_json
        self.realtime = realtime
        self.tty = sys.stderr.isatty()
        self._status = False
        self._store_problem: str | None = None

    def on_started(self, session) -> None:
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
                        "start": final.start, "end": final.end, "flags": list(final.flags)})
            return
        self._clear_status()
        flags = f"  ({', '.join(final.flags)})" if final.flags else ""
        print(f"[{clock(final.start, True)} → {clock(final.end, True)}] {inert(final.text)}{flags}", flush=True)

    def on_cleaned(self, segments) -> None:
        if self.as_json:
            for seg in segments:
                write_json({"type": "cleaned", "id": seg.id, "seq": seg.seq, "text": seg.clean_text})

    def on_rewrite_error(self, message: str) -> None:
        self._clear_status()
        print(f"notetaker: cleanup stopped: {message}; the transcript is saved as heard", file=sys.stderr)

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
                        "waiting_file": str(result.waiting_file) if result.waiting_file else None})
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
        print(f"session {result.session_id} {result.status}: {result.finals} segments, "
              f"{duration(result.duration_s)} of audio, RTF {p.rtf:.2f}{lag} "
              f"(`notetaker show {result.session_id}`)", file=sys.stderr)

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


def plan_checked(settings: Settings) -> tuple[Settings, object]:
    """The memory plan for these settings, checked before anything loads or downloads: a
    configuration that does not fit is one line naming the nearest one that does. Returns
    the settings with the plan's choices filled in, and the plan."""
    from rewrite.registry import backend_name

    from notetaker.budget import plan_for, settings_for

    if settings.rewrite_backend is not None:
        backend_name(settings.rewrite_backend)  # an unknown name: one line before any planning
    plan = plan_for(settings)
    if not plan.fits:
        raise UsageError(f"{plan.problem}; nearest that fits: {plan.suggestion}" if plan.suggestion
                         else plan.problem)
    return settings_for(settings, plan), plan


def fetch_planned(settings: Settings, plan) -> None:
    """Download what the plan needs and is not here yet, then give MLX the plan's limits."""
    from notetaker.budget import apply_limits, plan_for

    if _pull_missing(settings, plan):
        fresh = plan_for(settings)  # what is on disk now wins over the published numbers
        plan.memory_limit, plan.cache_limit = fresh.memory_limit, fresh.cache_limit
    apply_limits(plan)


def _pull_missing(settings: Settings, plan) -> bool:
    """Download catalogue models the plan needs through `models pull` (only the files the
    engine reads, with a progress bar); other models download when they load."""
    from notetaker.budget import gb
    from notetaker.catalogue import by_name
    from notetaker.models import pull

    pulled = False
    wanted = [plan.asr, plan.rewrite if plan.rewrite_backend == "mlx" else None]
    for c in wanted:
        entry = by_name(c.name) if c is not None and not c.downloaded else None
        if entry is None or not settings.allow_download:
            continue
        # Never a silent download: one line first, on a terminal or not.
        print(f"notetaker: downloading {c.name} ({entry.repo}, {gb(entry.download_bytes)})", file=sys.stderr,
              flush=True)
        pull(c.name, settings, progress=sys.stderr.isatty())
        pulled = True
    return pulled


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
    from asr.base import SessionOptions
    from asr.registry import load_engine

    from notetaker.audio import FileSource
    from notetaker.audio.file import path_text
    from notetaker.recorder import Recorder

    if args.sample == bool(args.file):
        raise UsageError("give an audio FILE or --sample (not both)")
    path = data_file(SAMPLE) if args.sample else Path(args.file)
    # Everything a user can get wrong is checked before anything is saved.
    _check_decoding(args, settings)
    source = FileSource.open(path, realtime=args.realtime, speed=args.speed)
    with source:
        from notetaker.tui.launch import check_engine_options

        settings, plan = plan_checked(settings)
        check_engine_options(settings)  # a bad language or delay costs no download
        fetch_planned(settings, plan)
        engine = load_engine(settings.engine, settings.model, cache_dir=settings.models_dir,
                             allow_download=settings.allow_download)
        # A rewrite model that does not fit beside the speech model loads after it is gone.
        rewrite = load_rewrite(settings, voxtral_engine=engine if engine.name == "voxtral" else None,
                               context_tokens=_context(plan)) if plan.rewrite_live else None
        store = open_store(settings)
        printer = _Printer(args.json, args.realtime)
        options = SessionOptions(language=settings.language, partials=args.realtime,
                                 delay_ms=settings.delay_ms if engine.capabilities.delay_control else None,
                                 context=settings.context, windowing=_windowing(args, engine), beam_size=args.beam_size)
        title = args.title or (("Sample: " if args.sample else "") + path_text(path.stem))
        recorder = Recorder(store, engine, source, title=title, options=options, realtime=args.realtime,
                            listeners=[printer], audio_path=path_text(path.resolve()), rewrite=rewrite,
                            spool_dir=settings.sessions_dir, keep_audio=settings.keep_audio)
        try:
            result = recorder.run()
            if result.status == "complete":
                _flag_file(store, source.audio, result.session_id)
            if plan.after and result.status == "complete":
                del recorder, engine
                _clean_after(store, settings, plan, result.session_id)
        finally:
            store.close()
            if rewrite is not None:
                rewrite.close()
    if result.waiting:
        return EXIT_USAGE
    return EXIT_OK if result.status == "complete" else EXIT_INTERRUPTED


def _flag_file(store, audio, session_id: int) -> None:
    """What decoding found that the transcript does not show (damage skipped, audio that ends
    before the header says, speech-level audio with no text): a warning line each and a
    `note` mark on the meeting, so it never looks silently complete."""
    from notetaker.audio.file import path_text

    recognised = any(seg.text.strip() for seg in store.segments(session_id))
    for t, text in audio.notes(recognised):
        store.add_mark(session_id, t, "note", text)
        print(f"notetaker: {path_text(audio.path)}: {text}", file=sys.stderr)


def _context(plan) -> int | None:
    return plan.rewrite.context if plan.rewrite is not None else None


def _clean_after(store, settings: Settings, plan, session_id: int) -> None:
    """The plan's post-meeting rewrite: the speech model is gone, the LLM loads and cleans."""
    import gc

    from notetaker.summary import clean_session

    gc.collect()
    print(f"notetaker: cleaning up the text with {plan.rewrite.name} now that the speech model is unloaded",
          file=sys.stderr)
    backend = load_rewrite(settings, context_tokens=_context(plan))
    try:
        clean_session(store, session_id, backend)
    finally:
        backend.close()


# -- recover ----------------------------------------------------------------------------------


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
            print(f"{r.session.id:>5}  {started:16}  {duration(r.audio_s):>7}  {duration(r.after_last_final_s):>7}  "
                  f"{inert(r.session.title)}")
        else:
            print(f"{r.session.id:>5}  {started:16}  {'-':>7}  {'-':>7}  {inert(r.session.title)}  (no audio to recover)")
    if any(r.recoverable for r in found):
        print("`notetaker recover ID` (or --all) transcribes the unheard audio into the meeting", file=sys.stderr)
    return EXIT_OK


def _recover(store, settings: Settings, args: argparse.Namespace, ids: list[int]) -> int:
    from asr.registry import load_engine

    from notetaker.recovery import RecoveryError, recover_session

    engines: dict[tuple, object] = {}
    failed = False
    for sid in ids:
        s = store.get_session(sid)  # SessionNotFound: one line, exit 2
        name = args.engine or s.engine or settings.engine
        model = args.model or (s.model if name == s.engine else None)

        def engine(key=(name, model)):
            if key not in engines:
                engines[key] = load_engine(key[0], key[1], cache_dir=settings.models_dir,
                                           allow_download=settings.allow_download)
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
                                     on_final=show)
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
                        "already_complete": result.already_complete, "spool_error": result.spool_error})
        elif result.already_complete:
            print(f"meeting {sid} is complete; nothing to recover", file=sys.stderr)
        else:
            print(f"meeting {sid} recovered: {len(result.added)} new segments from "
                  f"{duration(max(0.0, result.audio_s - resumed))} of audio after {clock(resumed)}; complete "
                  f"(`notetaker show {sid}`)", file=sys.stderr)
        if result.spool_error:
            print(f"notetaker: {result.spool_error}; the raw audio stays in {settings.sessions_dir / str(sid)}",
                  file=sys.stderr)
    return EXIT_USAGE if failed else EXIT_OK


# -- the terminal UI --------------------------------------------------------------------------


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    from notetaker.tui.launch import cmd_record

    return cmd_record(args, settings)


def cmd_tui(args: argparse.Namespace, settings: Settings) -> int:
    from notetaker.tui.launch import cmd_tui

    return cmd_tui(args, settings)


# -- browsing ---------------------------------------------------------------------------------


def _session_json(s) -> dict:
    return {"id": s.id, "title": s.title, "started_at": s.started_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None, "status": s.status,
            "engine": s.engine, "model": s.model, "language": s.language, "duration_s": s.duration_s}


def cmd_sessions(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings, readonly=True) as store:
        sessions = store.list_sessions(limit=args.limit)
    if args.json:
        for s in sessions:
            write_json(_session_json(s))
        return EXIT_OK
    if not sessions:
        print("no meetings yet; `notetaker transcribe FILE` makes one", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':>5}  {'STARTED':16}  {'LENGTH':>7}  {'STATUS':11}  {'ENGINE':18}  TITLE")
    for s in sessions:
        status = s.status.upper() if s.status == "interrupted" else s.status
        engine = f"{s.engine or '-'}/{s.model or '-'}"[:18]
        started = s.started_at.astimezone().strftime("%Y-%m-%d %H:%M")
        print(f"{s.id:>5}  {started:16}  {duration(s.duration_s):>7}  {status:11}  {inert(engine):18}  {inert(s.title)}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings, readonly=True) as store:
        if args.json:
            write_json(store.export_json(args.id))
            return EXIT_OK
        s = store.get_session(args.id)
        segments = store.segments(args.id)
        marks = store.marks(args.id)
    started = s.started_at.astimezone().strftime("%Y-%m-%d %H:%M")
    print(f"# {inert(s.title or 'Untitled')}  (session {s.id}, {started}, {duration(s.duration_s)}, {s.status}, "
          f"{inert(s.engine)}/{inert(s.model)})")
    for m in marks:
        print(f"  mark [{clock(m.t_s)}] {m.kind}: {inert(m.text)}")
    for seg in segments:
        flags = f"  ({inert(', '.join(seg.flags))})" if seg.flags else ""
        print(f"[{clock(seg.start_s)}] {inert(seg.text)}{flags}")
    if not segments:
        print("(no transcript)", file=sys.stderr)
    return EXIT_OK


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    bold = sys.stdout.isatty() and not args.json
    marks = ("\ue000", "\ue001")  # private-use stand-ins: the snippet is made inert, then marked up
    shown = ("\x1b[1m", "\x1b[0m") if bold else ("[", "]")
    with open_store(settings, readonly=True) as store:
        hits = store.search(args.query, limit=args.limit, session_id=args.session,
                            highlight=shown if args.json else marks)
    for h in hits:
        if args.json:
            write_json({"session_id": h.session_id, "title": h.session_title, "segment_id": h.segment_id,
                        "seq": h.seq, "start": h.start_s, "end": h.end_s, "snippet": h.snippet, "rank": h.rank})
        else:
            snippet = inert(h.snippet).replace(marks[0], shown[0]).replace(marks[1], shown[1])
            print(f"{h.session_id:>5}  [{clock(h.start_s)}]  {inert(h.session_title)[:30]:30}  {snippet}")
    if not hits and not args.json:
        print("no matches", file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from storage import render

    from notetaker.summary import ExistsError, export_name, os_error_text, write_export

    with open_store(settings, readonly=True) as store:
        s = store.get_session(args.id)
        text = render(args.format, s, store.segments(args.id), store.marks(args.id), store.summaries(args.id))
    if not args.output:
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.output).expanduser()
    # "-o notes/" names a folder even before it exists (Path would drop the slash and write a file "notes")
    if out.is_dir() or args.output.endswith(("/", os.sep)):
        out = out / export_name(s, args.format)
    try:
        write_export(out, text, force=args.force)
    except ExistsError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write {out}: {os_error_text(e)}") from None
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    from notetaker.meetings import delete_meeting

    ids = list(dict.fromkeys(args.ids))
    with open_store(settings) as store:
        sessions = [store.get_session(i) for i in ids]  # every id checked before one is deleted
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("deleting cannot be undone: add --yes to delete without being asked")
            listed = "; ".join(f"{s.id} “{s.title or 'Untitled'}”" for s in sessions)
            answer = input(f"Delete {listed} with transcripts, marks, summaries and audio? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted", file=sys.stderr)
                return EXIT_OK
        for s in sessions:
            delete_meeting(store, settings.sessions_dir, s.id)
            print(f"deleted meeting {s.id}", file=sys.stderr)
    return EXIT_OK


MAX_IMPORT_BYTES = 256 << 20  # a JSON export of a very long meeting is a few MB


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from rewrite.prompts import read_user_text

    path = Path(args.file)
    try:
        text = read_user_text(path, MAX_IMPORT_BYTES)
    except ValueError as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not a notetaker JSON export: {e}") from None
    except (ValueError, RecursionError):  # 5,000-digit numbers, nesting 100,000 deep
        raise UsageError(f"{path} is not a notetaker JSON export: numbers too long or nesting too deep") from None
    with open_store(settings) as store:
        sid = store.import_json(data)
    print(f"imported as session {sid}", file=sys.stderr)
    return EXIT_OK


# -- summaries ----------------------------------------------------------------------------


def load_rewrite(settings: Settings, name: str | None = None, voxtral_engine=None, context_tokens: int | None = None):
    """The configured (or named) rewrite backend; None for `none`. Says on stderr when the
    Voxtral text mode fails its probe and mlx is used instead. `context_tokens`: the
    context the memory plan gives an mlx model."""
    from rewrite.registry import load_backend

    return load_backend(name or settings.rewrite_backend, settings.rewrite_model, cache_dir=settings.models_dir,
                        context_tokens=context_tokens,
                        allow_download=settings.allow_download, openai_base_url=settings.openai_base_url,
                        voxtral_engine=voxtral_engine,
                        voxtral_model=settings.model if settings.engine == "voxtral" else None,
                        probe_path=settings.home / "probes.json",
                        report=lambda line: print(f"notetaker: {line}", file=sys.stderr))


def _say_llm_download(settings: Settings) -> None:
    """One line before mlx-lm fetches a rewrite model the plan did not pull (the default when
    none is downloaded, a hub repo outside the catalogue): never a silent download."""
    from rewrite.mlx_llm import DEFAULT_MODEL

    from notetaker.budget import gb
    from notetaker.models import find

    spec = settings.rewrite_model or DEFAULT_MODEL
    item = find(spec, settings) if settings.allow_download and not Path(spec).expanduser().exists() else None
    if item is not None and item.repo is not None and item.state in ("missing", "partial"):
        size = gb(item.entry.download_bytes) if item.entry is not None else "size unknown until it is fetched"
        print(f"notetaker: downloading {item.name} ({item.repo}, {size})", file=sys.stderr, flush=True)


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from rewrite.prompts import load_template, write_default_templates

    from notetaker.summary import check_transcript, clean_session, removed_citations_note, summarize_session

    # Everything a user can get wrong is checked before a model loads.
    with open_store(settings) as store:
        check_transcript(store, args.id)
    try:  # an example for users to copy; a read-only home must not stop a summary
        write_default_templates(settings.home / "templates")
    except OSError:
        pass
    template = load_template(args.template, settings.home / "templates")
    explicit = settings.rewrite_backend not in (None, "none")
    settings, plan = plan_checked(replace(settings, engine="none", model=None,
                                          rewrite_backend=settings.rewrite_backend if explicit else None))
    fetch_planned(settings, plan)
    name = settings.rewrite_backend if settings.rewrite_backend not in (None, "none") else "mlx"
    if name == "mlx":
        _say_llm_download(settings)
    backend = load_rewrite(settings, name, context_tokens=_context(plan))
    printed = 0

    def show(text: str) -> None:
        nonlocal printed
        if not args.json:
            sys.stdout.write(text[printed:])
            sys.stdout.flush()
        printed = len(text)

    try:
        with open_store(settings) as store:
            if args.clean:
                clean_session(store, args.id, backend)
            stored = summarize_session(store, args.id, backend, template, on_text=show)
    finally:
        backend.close()
    r, rec = stored.result, stored.record
    if args.json:
        write_json({"summary_id": rec.id, "session_id": args.id, "backend": rec.backend, "model": rec.model,
                    "markdown": r.markdown, "citations": [{"bullet": b, "segment_ids": list(ids)}
                                                          for b, ids in r.citations],
                    "removed_citations": r.removed_citations, "chunks": r.chunks})
    else:
        print()
    if r.removed_citations:
        print(f"notetaker: {removed_citations_note(r.removed_citations)}", file=sys.stderr)
    print(f"summary stored for meeting {args.id} ({rec.backend}/{rec.model}"
          f"{f', {r.chunks} chunks' if r.chunks > 1 else ''})", file=sys.stderr)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from notetaker.doctor import diagnose, render_text

    report = diagnose(settings)
    if args.json:
        write_json(report)
    else:
        print(render_text(report))
    return EXIT_OK


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from notetaker.models_cli import cmd_models as run

    return run(args, settings)
