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


@dataclass(frozen=True)
class SpeechChoice:
    """A speech model a new meeting can run: the plan's default, or a downloaded one that fits."""

    label: str  # "whisper/tiny.en (0.2 GB, the plan's choice)"
    engine: str
    model: str


@dataclass(frozen=True)
class MeetingSetup:
    """What the new-meeting dialog offers on this machine."""

    devices: list[tuple[str, Any]] = field(default_factory=list)  # (label, device for the source)
    no_device: str | None = None  # why there is none to offer (then a file can be given instead)
    system_audio: bool = False  # a loopback or monitor device exists for the system audio
    speech: list[SpeechChoice] = field(default_factory=list)  # the plan's default first
    title: str = ""  # a title to start from ("Meeting 2026-03-05 10:00")
    rewrite: str = "none"  # the rewrite backend the plan runs during a meeting ("none": after it, or none)


@dataclass(frozen=True)
class MeetingChoice:
    """What the new-meeting dialog was told: the input (a device, or a file played as if live),
    the system audio, the speech model and the title."""

    title: str
    device: Any = None  # one of MeetingSetup.devices' values; None: the default input
    file: Path | None = None  # an audio file instead of a device
    system_audio: bool = False
    speech: SpeechChoice | None = None  # None: the configured engine
    rewrite: str = "none"  # cleanup during the meeting (MeetingSetup.rewrite)


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
    output_device: str | None = None  # where a line's audio plays (`p`); None: the system's default output
    engine_loader: Callable[[str | None, str | None], Engine] | None = None  # (name, model) → engine, for recovery
    # recovery: (store, meeting id) → what labels its speakers from its spool, or None
    # (notetaker.diarization.recovery_labeller)
    recovery_labeller: Callable[[SessionStore, int], Callable[[Any], str] | None] | None = None
    # a past meeting's speakers found afresh from its kept audio (notetaker.diarization.
    # find_in_meeting): what it did in one line; None: not offered
    find_speakers: Callable[[SessionStore, int], str] | None = None
    # speaker labels: the live diarizer for the source's channel labels (loaded on the compute
    # thread; notetaker.diarization.speakers_factory); None: no speakers
    speakers_factory: Callable[[tuple], Any] | None = None
    # a new meeting from the meetings list (`n`): what can be chosen, and the deps of the
    # meeting a choice describes once the checks `notetaker record` runs have passed (plan,
    # options, downloads, the input opens); both are called off the UI thread, and raise with
    # one line when the meeting cannot start
    # the custom vocabulary in the config file: adds a term, returns the new list (None: the
    # replace dialog does not offer it)
    add_to_vocabulary: Callable[[str], tuple[str, ...]] | None = None
    meeting_setup: Callable[[], MeetingSetup] | None = None
    prepare_meeting: Callable[[MeetingChoice], AppDeps] | None = None
