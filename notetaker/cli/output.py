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
