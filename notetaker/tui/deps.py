"""What the TUI is built from: injected, so tests pass a scripted engine, a store in a
temporary folder and a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.base import Engine, SessionOptions
from rewrite.backend import RewriteBackend
from storage import SessionStore

from notetaker.audio import AudioSource

REWRITE_CYCLE = ("none", "mlx", "voxtral", "openai")


@dataclass
class AppDeps:
    store: SessionStore
    engine_factory: Callable[[], Engine]  # loads the ASR engine (called on the compute thread)
    source_factory: Callable[[], AudioSource] | None = None  # the live input; None: no meeting to record
    rewrite_factory: Callable[[str], RewriteBackend | None] = lambda name: None  # a backend by name
    options: SessionOptions = field(default_factory=SessionOptions)
    title: str = ""
    realtime: bool = True
    export_dir: Path = Path(".")
    templates_dir: Path | None = None
    rewrite_backend: str = "none"  # the backend in use at start (cycled with `r`)
    rewrite_off: str | None = None  # why cleanup is off though one was set up (said at start)
    # what can be offered when a summary cannot be made (prepare.RewriteChoice), and its loader
    rewrite_choices: Callable[[], list] = list
    rewrite_choice_factory: Callable[[Any], RewriteBackend | None] | None = None
    engine_label: str = ""  # "whisper/tiny.en" for the status bar before the engine loads
    clock: Callable[[], float] = time.monotonic
    memory_budget_bytes: int | None = None  # from the memory budgeter, when there is a plan
    memory_planned_bytes: int | None = None  # what the plan expects the meeting's models to take
    audio_path: Path | None = None  # the input file, stored with the meeting
    memory_probe: Callable[[], int] | None = None  # bytes in use (default: this process's RSS)
    spool_dir: Path | None = None  # raw audio of each meeting goes to spool_dir/<id>/ (None: not kept)
    keep_audio: bool = True  # keep the compacted audio after a clean stop
    engine_loader: Callable[[str | None, str | None], Engine] | None = None  # (name, model) → engine, for recovery
