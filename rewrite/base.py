"""The rewrite primitive: every backend turns chat messages into streamed text (ChatModel);
cleanup and summaries are built on that one primitive, so they behave the same on every
backend.

This module is the bottom of rewrite/: it imports nothing else from it. Cleanup
(rewrite/cleanup.py), summaries (rewrite/summarize.py) and prompts (rewrite/prompts.py)
are written against ChatModel; rewrite/backend.py adds them to it as RewriteBackend, the
class every backend subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

class RewriteError(Exception):
    """A failure a user can cause or fix (server unreachable, unknown model, bad template,
    empty transcript): one line, never a traceback."""


@dataclass(frozen=True)
class Capabilities:
    backend: str  # the backend's registry name
    model: str
    context_tokens: int  # the model's real context window (prompt + output)
    experimental: bool = False


@dataclass(frozen=True)
class Segment:
    """What rewriting sees of a stored final."""

    id: int
    start: float
    end: float
    text: str
    channel: str | None = None
    speaker: str | None = None  # who said it as a reader sees it: a name, else a label (S2)


@dataclass(frozen=True)
class Note:
    """A line the person taking the meeting typed themselves, `at` seconds into it: their
    emphasis for a summary, never a line a summary may cite."""

    at: float
    text: str


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user", "assistant"
    content: str


class ChatModel(ABC):
    """What a backend implements: its capabilities, a token count and a streamed reply."""

    name: str = ""  # the backend's registry name

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's prompt (an estimate where the server will not say)."""

    @abstractmethod
    def complete(self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        """Stream the assistant's reply to `messages` as text pieces (a piece may be empty: a
        point where a caller driving the iterator may run other work). Raises RewriteError."""

    def close(self) -> None:
        """Release the model (weights, server connections)."""
