"""`notetaker play ID [--segment N]`: a meeting's kept audio on an output device, one segment
(its own channel) or the whole meeting (channels mixed); Ctrl-C stops it cleanly."""

from __future__ import annotations

import argparse
import sys

from notetaker.cli.output import EXIT_INTERRUPTED, EXIT_OK, UsageError
from notetaker.config import Settings
from notetaker.prepare import open_store
from storage import SegmentRecord
from storage.export import clock

STOP_WAIT_S = 5.0  # after Ctrl-C the device is aborted: this is only a bound


def cmd_play(args: argparse.Namespace, settings: Settings) -> int:
    from notetaker.audio import AudioError
    from notetaker.audio.playback import Player, meeting_audio, meeting_span, read_span, segment_span, span_audio

    with open_store(settings, readonly=True) as store:
        store.get_session(args.id)  # an unknown meeting is said before anything about audio
        segments = store.segments(args.id)
    reader = meeting_audio(settings.sessions_dir, args.id)
    if reader.frames == 0:
        raise AudioError(f"the audio kept for meeting {args.id} is empty")
    if args.segment is not None:
        seg = _segment(segments, args.id, args.segment)
        span = segment_span(reader, seg)
        audio = read_span(reader, span)  # read before the device opens: a bad file is said first
        what = f"segment #{seg.seq}" + (f" ({seg.channel})" if seg.channel else "") + " of"
    else:
        span = meeting_span(reader)
        audio = span_audio(reader, span)
        what = "all of"
    player = Player(args.device or settings.output_device)
    player.start(audio, span.start_s)
    print(f"playing {what} meeting {args.id}, {clock(span.start_s)} to {clock(span.end_s)}, on {player.device.label}"
          " (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        while not player.wait(0.2):
            pass
    except KeyboardInterrupt:
        player.stop()
        player.wait(STOP_WAIT_S)
        print(f"notetaker: stopped at {clock(player.position_s)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if player.error:
        raise AudioError(player.error)
    return EXIT_OK


def _segment(segments: list[SegmentRecord], session_id: int, number: int) -> SegmentRecord:
    for seg in segments:
        if seg.seq == number:
            return seg
    if not segments:
        raise UsageError(f"meeting {session_id} has no transcript segments; play all of it without --segment")
    raise UsageError(f"meeting {session_id} has no segment #{number} (its segments are #{segments[0].seq} "
                     f"to #{segments[-1].seq}; see `notetaker show {session_id}`)")
