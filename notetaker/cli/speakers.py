"""`notetaker speakers ID`: a meeting's speaker labels with their names and talk time; name
them (`--rename S2=Anya`) or merge two labels that are one person (`--merge S3=S1`)."""

from __future__ import annotations

import argparse
import sys

from notetaker.cli.output import EXIT_OK, write_json
from notetaker.config import Settings
from notetaker.inert import inert
from notetaker.prepare import open_store
from notetaker.summary import duration_text


def cmd_speakers(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings, readonly=not args.edits) as store:
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
