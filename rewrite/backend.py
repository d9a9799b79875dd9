"""A rewrite backend and how one is described.

RewriteBackend is the class every backend subclasses and the app types against: the
ChatModel primitive (rewrite/base.py) plus `cleanup` and `summarize`, which are built on
it here so that they behave the same on every backend.

Each backend module ends with a `SPEC` (a BackendSpec): its name, what it is, its default
model and short names, what it needs and how it is built. rewrite/registry.py lists the
specs; adding a backend is one module plus one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewrite.base import ChatModel, Segment
from rewrite.cleanup import clean_segments
from rewrite.summarize import Summarizer


class RewriteBackend(ChatModel):
    """A backend implements `capabilities`, `count_tokens` and `complete` (ChatModel);
    `cleanup` and `summarize` come from here."""

    def cleanup(self, segments: Sequence[Segment]) -> list[str]:
        """Cleaned text for each segment, in order (the raw text where cleanup would change
        its content)."""
        return clean_segments(self, segments)

    def summarize(self, transcript: Sequence[Segment], template: str | None = None) -> Iterator[str]:
        """Stream a Markdown summary of the transcript; `template` is the template's Markdown
        text (names and paths go through rewrite.prompts.load_template). See
        rewrite.summarize.Summarizer for the checked result with citations."""
        return Summarizer(self, template).stream(transcript)


def _no_report(line: str) -> None:
    pass


@dataclass(frozen=True)
class BackendOptions:
    """Everything a caller may hand a backend's builder; each builder reads what it uses.
    `fallback` is filled in by the registry for a spec that names one."""

    model: str | None = None  # None: the backend's default
    cache_dir: Path | None = None
    allow_download: bool = True
    context_tokens: int | None = None  # the context an in-process model runs with (None: its window, capped)
    openai_base_url: str | None = None
    voxtral_engine: Any = None  # a loaded Voxtral engine to share
    voxtral_model: str | None = None  # the Voxtral model to load where none is shared
    probe_path: Path | None = None  # where a capability probe keeps its score
    report: Callable[[str], None] = _no_report  # one line each: fallbacks and warnings
    fallback: Callable[[], RewriteBackend] | None = None


@dataclass(frozen=True)
class BackendSpec:
    """The facts about one backend, kept next to its code."""

    name: str  # what users call it (config `rewrite_backend`, `--rewrite`, `--backend`)
    summary: str  # one line: what it is
    build: Callable[[BackendOptions], RewriteBackend]
    default_model: str | None = None  # None: the backend has no model of its own to pick
    names: Mapping[str, str] = field(default_factory=dict)  # short model names -> model ids
    # BackendOptions fields that must be set, each with what it is in words
    # ("the openai backend needs a server address ...").
    needs: Mapping[str, str] = field(default_factory=dict)
    fallback: str | None = None  # the backend built in its place when this one cannot run
