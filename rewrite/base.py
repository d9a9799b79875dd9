"""The rewrite contract: every backend turns chat messages into streamed text; cleanup and
summaries are built on that one primitive, so they behave the same on every backend.

A backend implements `capabilities`, `count_tokens` and `complete`; `cleanup` and
`summarize` come from here (rewrite/cleanup.py, rewrite/summarize.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

BACKENDS = ("none", "mlx", "voxtral", "openai")


class RewriteError(Exception):
    """A failure a user can cause or fix (server unreachable, unknown model, bad template,
    empty transcript): one line, never a traceback."""


@dataclass(frozen=True)
class Capabilities:
    backend: str  # "mlx", "voxtral", "openai"
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


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user", "assistant"
    content: str


class RewriteBackend(ABC):
    name: str = ""

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

    def cleanup(self, segments: Sequence[Segment]) -> list[str]:
        """Cleaned text for each segment, in order (the raw text where cleanup would change
        its content)."""
        from rewrite.cleanup import clean_segments

        return clean_segments(self, segments)

    def summarize(self, transcript: Sequence[Segment], template: str | None = None) -> Iterator[str]:
        """Stream a Markdown summary of the transcript; `template` is the template's Markdown
        text (names and paths go through rewrite.prompts.load_template). See
        rewrite.summarize.Summarizer for the checked result with citations."""
        from rewrite.summarize import Summarizer

        return Summarizer(self, template).stream(transcript)

    def close(self) -> None:
        """Release the model (weights, server connections)."""
