"""Browsing, exporting, deleting and importing meetings, summaries and the doctor: what those
subcommands do and print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from notetaker.cli.output import EXIT_OK, UsageError, write_json
from notetaker.config import Settings
from notetaker.inert import inert
from notetaker.prepare import open_store
from notetaker.summary import duration_text
from storage.export import clock, turn_voices


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
        print(f"{s.id:>5}  {started:16}  {duration_text(s.duration_s):>7}  {status:11}  {inert(engine):18}  {inert(s.title)}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings, readonly=True) as store:
        if args.json:
            write_json(store.export_json(args.id))
            return EXIT_OK
        s = store.get_session(args.id)
        segments = store.segments(args.id)
        marks = store.marks(args.id)
        notes = store.notes(args.id)
        voices = turn_voices(segments, store.speaker_names(args.id))
    started = s.started_at.astimezone().strftime("%Y-%m-%d %H:%M")
    print(f"# {inert(s.title or 'Untitled')}  (session {s.id}, {started}, {duration_text(s.duration_s)}, {s.status}, "
          f"{inert(s.engine)}/{inert(s.model)})")
    for m in marks:
        print(f"  mark [{clock(m.t_s)}] {m.kind}: {inert(m.text)}")
    for n in notes:
        print(f"  note [{clock(n.t_s)}] {inert(' '.join(n.text.split()))}")
    for seg, who in zip(segments, voices):
        notes = [*seg.flags, "edited"] if seg.edited else seg.flags
        flags = f"  ({inert(', '.join(notes))})" if notes else ""
        who = f"{inert(who)}: " if who else ""
        print(f"[#{seg.seq} {clock(seg.start_s)}] {who}{inert(seg.spoken_text)}{flags}")  # #3: what summaries cite
    if not segments:
        print("(no transcript)", file=sys.stderr)
    return EXIT_OK


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    """One line per hit, grouped by meeting (best meetings first); a meeting that matched only
    by its title, or a query that only leaves meetings out, gets one line for the meeting."""
    bold = sys.stdout.isatty() and not args.json
    marks = ("\ue000", "\ue001")  # private-use stand-ins: the snippet is made inert, then marked up
    shown = ("\x1b[1m", "\x1b[0m") if bold else ("[", "]")
    with open_store(settings, readonly=True) as store:
        meetings = store.search_meetings(args.query, limit=args.limit, session_id=args.session,
                                         highlight=shown if args.json else marks)

    def marked(text: str) -> str:
        return inert(text).replace(marks[0], shown[0]).replace(marks[1], shown[1])

    for m in meetings:
        if not m.hits:
            kind = "title" if m.title_matched else "meeting"
            if args.json:
                write_json({"session_id": m.session_id, "title": m.title, "kind": kind, "segment_id": None,
                            "seq": None, "note_id": None, "start": None, "end": None, "snippet": m.title,
                            "rank": None})
            else:
                print(f"{m.session_id:>5}  [{kind}]  {marked(m.title)}")
        for h in m.hits:
            if args.json:
                write_json({"session_id": h.session_id, "title": h.session_title, "kind": h.kind,
                            "segment_id": h.segment_id, "seq": h.seq, "note_id": h.note_id, "start": h.start_s,
                            "end": h.end_s, "snippet": h.snippet, "rank": h.rank})
            else:
                where = f"[note {clock(h.start_s)}]" if h.is_note else f"[#{h.seq} {clock(h.start_s)}]"
                print(f"{h.session_id:>5}  {where}  {inert(h.session_title)[:30]:30}  {marked(h.snippet)}")
    if not meetings and not args.json:
        print("no matches", file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from storage import render

    from notetaker.summary import ExistsError, export_name, os_error_text, write_export

    with open_store(settings, readonly=True) as store:
        s = store.get_session(args.id)
        text = render(args.format, s, store.segments(args.id), store.marks(args.id), store.summaries(args.id),
                      store.notes(args.id), speakers=store.speaker_names(args.id))
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
            if not _confirm(f"Delete {listed} with transcripts, marks, summaries and audio?"):
                print("nothing deleted", file=sys.stderr)
                return EXIT_OK
        for s in sessions:
            delete_meeting(store, settings.sessions_dir, s.id)
            print(f"deleted meeting {s.id}", file=sys.stderr)
    return EXIT_OK


def _confirm(question: str) -> bool:
    """y/N on the terminal; end of input (ctrl+d) is no."""
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        print(file=sys.stderr)
        return False


# -- corrections ------------------------------------------------------------------------------


def _change_line(c, meeting: bool = False) -> str:
    """`[#3 00:00:04] before → after` (led by the meeting's id when several are changed)."""
    where = f"{c.session_id:>5}  " if meeting else ""
    return f"{where}[#{c.seq} {clock(c.start_s)}] {inert(c.before)} → {inert(c.after)}"


def cmd_edit(args: argparse.Namespace, settings: Settings) -> int:
    if args.undo and args.seq is not None:
        raise UsageError(f"--undo takes only the meeting: notetaker edit {args.id} --undo")
    if not args.undo and (args.seq is None or args.text is None):
        raise UsageError(f'give the segment\'s number and its text: notetaker edit {args.id} SEQ "text" (or --undo)')
    with open_store(settings) as store:
        if args.undo:
            changes = store.undo_last_edit(args.id)
        else:
            change = store.edit_segment(args.id, args.seq, args.text)
            changes = [change] if change else []
    if not changes:
        if args.undo:
            raise UsageError(f"nothing to undo in meeting {args.id}")
        print(f"#{args.seq} already reads so; nothing changed", file=sys.stderr)
        return EXIT_OK
    for c in changes:
        print(_change_line(c))
    done = "undid" if args.undo else "edited"
    print(f"{done} {len(changes)} segment{'s' * (len(changes) > 1)} of meeting {args.id}"
          + ("" if args.undo else f"; `notetaker edit {args.id} --undo` takes it back"), file=sys.stderr)
    return EXIT_OK


def cmd_replace(args: argparse.Namespace, settings: Settings) -> int:
    if args.all_meetings == (args.id is not None):
        raise UsageError("give ID OLD NEW, or OLD NEW with --all-meetings (see `notetaker replace --help`)")
    sid, old, new = args.id, args.old, args.new
    if args.add_to_vocabulary:
        from notetaker.config import clean_term

        clean_term(new)  # a term the vocabulary refuses is one line before anything changes
    where = "any meeting" if sid is None else f"meeting {sid}"
    with open_store(settings) as store:
        changes = store.preview_replace(old, new, sid, case_sensitive=args.case_sensitive)
        if not changes:
            print(f"no “{inert(old)}” in {where}; nothing changed", file=sys.stderr)
            return EXIT_OK
        for c in changes:
            print(_change_line(c, meeting=sid is None))
        count = f"{len(changes)} segment{'s' * (len(changes) > 1)}"
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"nothing changed: this is the preview; add --yes to replace in {count}", file=sys.stderr)
                return EXIT_OK
            if not _confirm(f"Replace in {count}?"):
                print("nothing changed", file=sys.stderr)
                return EXIT_OK
        applied = store.apply_changes(changes)
    skipped = len(changes) - len(applied)
    undo = "notetaker edit ID --undo" if sid is None else f"notetaker edit {sid} --undo"
    print(f"replaced in {len(applied)} of {count}"
          + (f" ({skipped} changed meanwhile and were left as they are)" if skipped else "")
          + f"; `{undo}` takes it back", file=sys.stderr)
    if args.add_to_vocabulary:
        _add_to_vocabulary(settings, new)
    return EXIT_OK


def _add_to_vocabulary(settings: Settings, term: str) -> None:
    """The replacement, added to the custom vocabulary (the replace is saved either way)."""
    from notetaker.vocabulary import add_term

    terms = add_term(settings, term)
    print(f"“{inert(' '.join(term.split()))}” is in the vocabulary ({len(terms)} terms)", file=sys.stderr)


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


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from rewrite.prompts import load_template, write_default_templates

    from notetaker.prepare import (
        check_rewrite,
        context_tokens,
        fetch_planned,
        load_rewrite,
        plan_checked,
        say_llm_download,
        without_asr,
    )
    from notetaker.summary import check_transcript, clean_session, removed_citations_note, summarize_session

    # Everything a user can get wrong is checked before a model loads.
    with open_store(settings) as store:
        check_transcript(store, args.id)
    try:  # an example for users to copy; a read-only home must not stop a summary
        write_default_templates(settings.home / "templates")
    except OSError:
        pass
    template = load_template(args.template, settings.home / "templates")
    settings, plan = plan_checked(without_asr(settings))
    if settings.rewrite_backend in (None, "none"):  # the same default doctor and the plan show
        from notetaker.budget import NO_REWRITE_MODEL

        asked = " (--backend none)" if args.rewrite_backend == "none" else ""
        raise UsageError(f"no summary of meeting {args.id}{asked}: {NO_REWRITE_MODEL}")
    fetch_planned(settings, plan)
    name = check_rewrite(settings)  # what it needs (a server address) is said before it loads
    if name == "mlx":
        say_llm_download(settings)
    backend = load_rewrite(settings, name, context_tokens=context_tokens(plan))
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
                    "markdown": r.markdown, "citations": [{"bullet": b, "seqs": list(ids)}
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


