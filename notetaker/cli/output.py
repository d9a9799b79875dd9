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
