"""A test-only rewrite backend, written as a real one is: a RewriteBackend and, at the end,
its SPEC. Registering it is one line in rewrite.registry.BACKENDS (a test adds that line
with monkeypatch). Its "model" is a rule: cleanup echoes each line without fillers, any
other request gets one cited bullet."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from rewrite.backend import BackendOptions, BackendSpec, RewriteBackend
from rewrite.base import Capabilities, Message, RewriteError
from rewrite.prompts import CLEANUP_SYSTEM

DEFAULT_MODEL = "tests/echo-base"
NAMES = {"echo-small": "tests/echo-small", "echo-base": DEFAULT_MODEL}
FILLERS = {"um", "uh", "er"}
_LINE = re.compile(r"^\[#(\d+)\] (.*)$")


class EchoBackend(RewriteBackend):
    name = "echo"

    def __init__(self, model: str | None, folder: Path, context_tokens: int | None = None):
        name = model or DEFAULT_MODEL
        self.model = NAMES.get(name.lower(), name)
        self.folder = folder
        self.context_tokens = context_tokens or 4096
        self.closed = False

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, self.model, self.context_tokens)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete(self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        if self.closed:
            raise RewriteError("the echo backend is closed")
        lines = [m for line in messages[-1].content.splitlines() if (m := _LINE.match(line))]
        if messages[0].content == CLEANUP_SYSTEM:
            kept = (" ".join(w for w in m.group(2).split() if w.lower().strip(",.") not in FILLERS) for m in lines)
            reply = "\n".join(f"[#{m.group(1)}] {text}" for m, text in zip(lines, kept, strict=True))
        else:
            reply = "### Key points\n- The meeting was echoed [#1]"
        yield from re.findall(r"\s*\S+", reply)

    def close(self) -> None:
        self.closed = True


def _build(options: BackendOptions) -> EchoBackend:
    assert options.cache_dir is not None  # the registry checks SPEC.needs first
    return EchoBackend(options.model, options.cache_dir, options.context_tokens)


SPEC = BackendSpec(name="echo", summary="test only: echoes transcript lines without fillers", build=_build,
                   default_model=DEFAULT_MODEL, names=NAMES, needs={"cache_dir": "a folder for its models"})


def _build_unavailable(options: BackendOptions) -> RewriteBackend:
    """A backend that can never run here: it hands over to its spec's fallback, the way
    voxtral hands over to mlx when its probe fails."""
    assert options.fallback is not None
    options.report("echo-offline is unavailable; using echo instead")
    return options.fallback()


UNAVAILABLE_SPEC = BackendSpec(name="echo-offline", summary="test only: always falls back",
                               build=_build_unavailable, fallback="echo")
