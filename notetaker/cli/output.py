"""What every subcommand shares: exit statuses, the usage error, and how results are printed."""

from __future__ import annotations

import json
import sys

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A bad argument the parser could not see: one line, exit 2."""


def in_terminal() -> bool:
    """Keys come from stdin and Textual draws on stderr; piped output gets plain text."""
    return all(f is not None and f.isatty() for f in (sys.stdin, sys.stdout, sys.stderr))


def write_json(obj, out=None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def warn(text: str) -> None:
    print(f"notetaker: {text}", file=sys.stderr, flush=True)


def check_engine_flags(args, engine: str | None) -> None:
    """`--delay` and `--context` given to an engine that cannot use them: one warning each
    (the transcript is the same without them, so the meeting goes ahead)."""
    from asr.base import ASRError
    from asr.registry import DEFAULT_ENGINE, family

    try:
        spec = family(engine or DEFAULT_ENGINE)
    except ASRError:  # an unknown engine is refused with its own line elsewhere
        return
    caps = spec.capabilities
    if getattr(args, "delay_ms", None) is not None and not caps.delay_control:
        warn(f"--delay does nothing with {spec.name}: it has no delay control (voxtral has); ignored")
    if getattr(args, "context", None) and not caps.context_biasing:
        warn(f"--context does nothing with {spec.name}: it cannot be steered by text (qwen3 can); ignored")


def check_speaker_flags(args) -> None:
    """`--speakers N` that cannot be honoured is a mistake: one line, nothing saved."""
    from notetaker.diarization import MAX_SPEAKERS

    n = getattr(args, "speakers", None)
    if n is not None and getattr(args, "no_diarize", False):
        raise UsageError("--speakers N is for speaker labels: drop it or --no-diarize")
    if n is not None and n > MAX_SPEAKERS:
        raise UsageError(f"--speakers must be 1 to {MAX_SPEAKERS}")


def say_speakers_off(diarization, settings) -> None:
    """Why a meeting runs without the speaker labels the user asked for (diarize = on, or
    --speakers N), once. Left at auto, labels that cannot run are off without a word on every
    meeting: `notetaker doctor` says why."""
    asked = settings.diarize == "on" or (diarization is not None and diarization.speakers is not None)
    if asked and diarization is not None and not diarization.on and diarization.off_reason:
        warn(diarization.off_reason)
