"""`notetaker speakers ID`: a meeting's speaker labels with their names and talk time; name
them (`--rename S2=Anya`) or merge two labels that are one person (`--merge S3=S1`); find
them from the meeting's kept audio (`--find`, for a meeting recorded with labels off or
recovered after a crash)."""

from __future__ import annotations

import argparse
import sys

from notetaker.cli.output import EXIT_OK, UsageError, write_json
from notetaker.config import Settings
from notetaker.inert import inert
from notetaker.prepare import open_store
from notetaker.summary import duration_text


def cmd_speakers(args: argparse.Namespace, settings: Settings) -> int:
    if args.count is not None and not args.find:
        raise UsageError("--count goes with --find")
    if args.find and args.edits:
        raise UsageError("--find labels the meeting afresh: rename or merge after it, not with it")
    with open_store(settings, readonly=not (args.edits or args.find)) as store:
        if args.find:
            _find(store, settings, args)
        if args.edits:
            for (kind, a, b), result in zip(args.edits, store.edit_speakers(args.id, args.edits)):
                done = (f"merged {a} into {b} ({result} segment{'' if result == 1 else 's'})" if kind == "merge"
                        else f"named {a} {result}" if result else f"{a} has no name now")
                print(inert(done), file=sys.stderr)
        speakers = store.speakers(args.id)
    if args.json:
        for s in speakers:
            write_json({"label": s.label, "name": s.name, "talk_s": round(s.talk_s, 3), "segments": s.segments,
                        "channels": list(s.channels)})
        return EXIT_OK
    if not speakers:
        print(f"meeting {args.id} has no speaker labels yet", file=sys.stderr)
        return EXIT_OK
    width = max(4, *(len(s.name or "") for s in speakers))
    print(f"{'LABEL':8}  {'NAME':{width}}  {'TALK':>7}  {'SEGMENTS':>8}  CHANNEL")
    for s in speakers:
        print(f"{inert(s.label):8}  {inert(s.name or '-'):{width}}  {duration_text(s.talk_s):>7}  {s.segments:>8}  "
              f"{', '.join(s.channels) or '-'}")
    return EXIT_OK


def _find(store, settings: Settings, args: argparse.Namespace) -> None:
    from notetaker.diarization import MAX_SPEAKERS, find_in_meeting

    if args.count is not None and args.count > MAX_SPEAKERS:
        raise UsageError(f"--count is at most {MAX_SPEAKERS}")
    shown = sys.stderr.isatty()
    started = False

    def progress(done: float, total: float) -> None:
        nonlocal started
        if shown:
            started = True
            print(f"\rfinding speakers: {duration_text(done)} of {duration_text(total)}", end="", file=sys.stderr,
                  flush=True)

    try:
        done = find_in_meeting(settings, store, args.id, args.count, on_progress=progress)
    finally:
        if started:  # end the progress line
            print(file=sys.stderr)
    print(done, file=sys.stderr)
