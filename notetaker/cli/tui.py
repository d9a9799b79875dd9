"""Opening the TUI from the command line: `notetaker` (past meetings) and `notetaker record`
(straight into a live meeting).

The start-up checks run first (`notetaker.prepare`), before the TUI takes the terminal and
before anything is saved; then the app is built from factories that load the engine and the
rewrite backend inside the TUI (on the compute thread), so the screen appears at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from notetaker.cli.output import (
    EXIT_INTERNAL,
    EXIT_OK,
    UsageError,
    check_engine_flags,
    check_speaker_flags,
    in_terminal,
    say_speakers_off,
)
from notetaker.config import Settings
from notetaker.diarization import find_in_meeting, recovery_labeller, speakers_factory
from notetaker.prepare import Factories, open_store, prepare, session_options
from notetaker.summary import duration_text

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aiff", ".aif")


def input_file(spec: str | None) -> Path | None:
    """The audio file `--input` names, or None when it names a device (or nothing: the
    default microphone)."""
    if not spec:
        return None
    path = Path(spec).expanduser()
    looks_like_file = "/" in spec or "\\" in spec or spec.lower().endswith(AUDIO_SUFFIXES)
    return path if path.exists() or looks_like_file else None


def capture_devices(args: argparse.Namespace, settings: Settings) -> tuple[dict, bool]:
    """{channel: device} for live capture, and whether to mix them: the microphone, plus the
    system audio when asked for (`auto`: the output's monitor). AudioError when none fits."""
    from notetaker.audio.base import AudioError
    from notetaker.audio.devices import default_system_device, list_input_devices, system_device_hint

    mic = args.input or settings.input_device
    if not list_input_devices():  # AudioError first if PortAudio itself is missing
        wanted = f" (looking for {mic!r})" if mic else ""
        raise AudioError(f"no audio input device found{wanted}; connect a microphone, give --input FILE, "
                         "or see `notetaker doctor`")
    devices: dict[str, object] = {"mic": int(mic) if mic and mic.isdigit() else mic}
    system = getattr(args, "system", None) or settings.system_device
    if system:
        if system == "auto":
            found = default_system_device()
            if found is None:
                raise AudioError(f"no loopback or monitor device for the system audio; {system_device_hint()}")
            devices["system"] = found
        else:
            devices["system"] = int(system) if system.isdigit() else system
    return devices, bool(getattr(args, "mix", False) or settings.mix_channels)


def build_deps(settings: Settings, store, *, source_factory: Callable | None = None, title: str = "",
               realtime: bool = True, rewrite_backend: str | None = None, engine_label: str = "",
               context_tokens: int | None = None, rewrite_off: str | None = None):
    """AppDeps from settings: factories that load the engine and the rewrite backend on the
    thread that calls them (the compute thread)."""
    from notetaker.tui.deps import AppDeps
    from notetaker.vocabulary import add_term

    factories = Factories(settings, context_tokens)
    return AppDeps(store=store, engine_factory=factories.engine, source_factory=source_factory,
                   meeting_setup=lambda: meeting_setup(settings),
                   add_to_vocabulary=lambda term: add_term(settings, term),
                   prepare_meeting=lambda choice: prepare_meeting(settings, store, choice),
                   rewrite_factory=factories.rewrite, options=session_options(settings, partials=realtime),
                   title=title, realtime=realtime, export_dir=Path.cwd(), templates_dir=settings.home / "templates",
                   rewrite_backend=rewrite_backend or settings.rewrite_backend or "none", rewrite_off=rewrite_off,
                   engine_label=engine_label,
                   spool_dir=settings.sessions_dir, keep_audio=settings.keep_audio,
                   output_device=settings.output_device, engine_loader=factories.engine_by_name, rewrite_choices=factories.rewrite_choices,
                   recovery_labeller=lambda store, sid: recovery_labeller(settings, store, sid),
                   find_speakers=lambda store, sid: find_in_meeting(settings, store, sid),
                   rewrite_choice_factory=factories.rewrite_choice)


def meeting_setup(settings: Settings):
    """What the new-meeting dialog offers: the input devices (the configured or default one
    first), whether there is system audio, and the speech models the memory plan allows."""
    from notetaker.audio.base import AudioError
    from notetaker.audio.devices import NO_INPUT, default_system_device, list_input_devices
    from notetaker.budget import plan_for
    from notetaker.tui.deps import MeetingSetup

    devices, no_device, system = [], None, False
    try:
        found = list_input_devices()
        mics = sorted((d for d in found if not d.is_monitor),
                      key=lambda d: (d.name != settings.input_device and str(d.index) != settings.input_device,
                                     not d.is_default))
        devices = [(d.label + ("  (default)" if d.is_default else ""), d) for d in mics]
        system = bool(found) and default_system_device(found) is not None
        no_device = None if devices else NO_INPUT
    except AudioError as e:
        no_device = str(e)
    plan = plan_for(settings)
    rewrite = plan.rewrite_backend if plan.rewrite_live else "none"
    return MeetingSetup(devices, no_device, system, speech_choices(settings, plan),
                        title=f"Meeting {time.strftime('%Y-%m-%d %H:%M')}", rewrite=rewrite)


def speech_choices(settings: Settings, plan) -> list:
    """The plan's speech model, then the other downloaded ones that fit beside what else the
    plan runs during a meeting (and run in real time on this machine)."""
    from dataclasses import replace

    from notetaker import models
    from notetaker.budget import from_catalogue, from_folder, gb
    from notetaker.tui.deps import SpeechChoice

    def label(c, note: str = "") -> str:
        size = f", {gb(c.footprint.total)}" if c.footprint else ""
        return f"{c.engine}/{c.name}{size}{note}"

    out, seen = [], set()
    if plan.asr is not None:
        out.append(SpeechChoice(label(plan.asr, ", the plan's choice"), plan.asr.engine, plan.asr.spec))
        seen.add((plan.asr.engine, plan.asr.spec))
    beside = sum(c.footprint.total for c in plan.during if c is not plan.asr and c.footprint)
    for item in models.scan(settings):
        if item.kind != "asr" or item.state != "complete" or item.folder is None:
            continue
        try:
            c = (from_catalogue(item.entry, plan.machine, item.folder) if item.entry is not None else
                 replace(from_folder(item.family, item.kind, item.engine, item.folder, plan.machine), name=item.name))
        except Exception:  # a folder that cannot be read is not offered (`models list` says why)
            continue
        fits = c.footprint is not None and c.footprint.total + beside <= plan.budget
        realtime = plan.machine.device != "cpu" or c.cpu_realtime
        if fits and realtime and (c.engine, c.spec) not in seen:
            seen.add((c.engine, c.spec))
            out.append(SpeechChoice(label(c), c.engine, c.spec))
    return out


def live_deps(ready, store, *, title: str, source_factory: Callable, realtime: bool = True,
              audio_path: Path | None = None):
    """The deps of a live meeting once `prepare` has passed: `notetaker record`'s, and those of
    a meeting started from the meetings list."""
    deps = build_deps(ready.settings, store, title=title, realtime=realtime, engine_label=ready.engine_label,
                      rewrite_backend=ready.rewrite, rewrite_off=ready.rewrite_off, source_factory=source_factory,
                      context_tokens=ready.context_tokens)
    deps.audio_path = audio_path
    deps.speakers_factory = speakers_factory(ready.diarization, realtime)
    deps.memory_budget_bytes = ready.plan.budget
    deps.memory_planned_bytes = sum(c.footprint.total for c in ready.plan.during if c.footprint)
    return deps


def prepare_meeting(settings: Settings, store, choice):
    """A meeting started from the meetings list gets the checks `notetaker record` runs:
    the plan for the speech model chosen, its options, its download, the rewrite backend (off
    with its reason when it cannot run), and the input opened once. Raises with one line."""
    from dataclasses import replace

    from notetaker.audio.file import path_text

    if choice.speech is not None:
        settings = replace(settings, engine=choice.speech.engine, model=choice.speech.model)
    ready = prepare(settings)
    source_for(ready.settings, choice).close()  # a device or file that cannot open: one line, nothing saved
    audio_path = path_text(choice.file.expanduser().resolve()) if choice.file is not None else None
    return live_deps(ready, store, title=choice.title, source_factory=lambda: source_for(ready.settings, choice),
                     audio_path=audio_path)


def source_for(settings: Settings, choice):
    """The audio source of a meeting started in the TUI: the file played as if live, or the
    device chosen (with the system audio when asked for)."""
    from notetaker.audio.base import AudioError

    if choice.file is not None:
        from notetaker.audio import FileSource

        return FileSource.open(choice.file, realtime=True)
    from notetaker.audio.capture import CaptureSource
    from notetaker.audio.devices import default_system_device, system_device_hint

    devices = {"mic": choice.device}
    if choice.system_audio:
        found = default_system_device()
        if found is None:
            raise AudioError(f"no loopback or monitor device for the system audio; {system_device_hint()}")
        devices["system"] = found
    return CaptureSource(devices, mix=settings.mix_channels)


def _write_templates(settings: Settings) -> None:
    from rewrite.prompts import write_default_templates

    try:  # an example for users to copy; a read-only home must not stop the app
        write_default_templates(settings.home / "templates")
    except OSError:
        pass


def _need_terminal(command: str) -> None:
    if not in_terminal():
        raise UsageError(f"`{command}` opens the terminal UI and needs a terminal; for plain output use "
                         "`notetaker transcribe FILE --realtime`")


def _run_app(app) -> tuple[object, int | None]:
    """Run the TUI; returns what it exited with and the session a quit stopped, if any.

    However the TUI closes, a meeting still recording is stopped and saved before this
    returns. The app runs on an event loop of ours, so `App.run` returns once the app has
    closed rather than once its compute thread is idle (as `asyncio.run` would wait for, and
    a recorder left running never is); a recorder still running is then stopped, and the
    thread awaited while it saves."""
    loop = asyncio.new_event_loop()
    try:
        result = app.run(loop=loop)
        recorder = getattr(app, "recorder", None)
        stopping = recorder is not None and not recorder.finished
        if stopping:
            # it saves what it heard and ends the session: complete for a live meeting
            recorder.end()
        loop.run_until_complete(loop.shutdown_default_executor())  # the compute thread saves and ends
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    return result, (recorder.session_id if stopping else None)


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    """`notetaker record`: the TUI straight into a live meeting, from the microphone (and the
    system audio) or from a file played as if live."""
    from notetaker.audio import FileSource
    from notetaker.audio.file import path_text

    path = input_file(args.input or settings.input_device)
    realtime = args.realtime
    _check_input_flags(args, path)
    speed = args.speed or 1.0
    if path is not None:
        FileSource.open(path, realtime=realtime, speed=speed).close()  # AudioError: one line, nothing saved

        def source_factory():
            return FileSource.open(path, realtime=realtime, speed=speed)
        title = args.title or path_text(path.stem)
    else:
        from notetaker.audio.capture import CaptureSource

        devices, mix = capture_devices(args, settings)
        CaptureSource(devices, mix=mix).close()  # a missing PortAudio or device: one line, nothing saved

        def source_factory():
            return CaptureSource(devices, mix=mix)
        realtime = True
        title = args.title or f"Meeting {time.strftime('%Y-%m-%d %H:%M')}"
    check_speaker_flags(args)
    ready = prepare(settings, speakers=args.speakers, realtime=realtime)
    settings = ready.settings
    check_engine_flags(args, settings.engine)
    say_speakers_off(ready.diarization, settings)
    _need_terminal("notetaker record")
    from notetaker.tui.app import make_app

    _write_templates(settings)
    store = open_store(settings)
    try:
        deps = live_deps(ready, store, title=title, realtime=realtime, source_factory=source_factory,
                         audio_path=path_text(path.resolve()) if path is not None else None)
        result, stopped = _run_app(make_app(deps, live=True))
        return _report(result, store, stopped, settings.sessions_dir)
    finally:
        store.close()


def _check_input_flags(args: argparse.Namespace, path: Path | None) -> None:
    """Flags the chosen input cannot honour are a mistake: one line, nothing saved."""
    if path is not None:
        if args.system or args.mix:
            flag = "--system" if args.system else "--mix"
            raise UsageError(f"{flag} records the other side of a call from a device; with --input FILE there is "
                             f"only the file: drop {flag}")
        if args.speed is not None and not args.realtime:
            raise UsageError("--speed paces a file played as if live; with --no-realtime it is read as fast as it "
                             "can be: drop one of them")
    elif args.speed is not None:
        raise UsageError("--speed plays a file faster; a microphone runs at its own pace: drop --speed "
                         "(or give --input FILE)")


def cmd_tui(args: argparse.Namespace, settings: Settings) -> int:
    """`notetaker` with no command, in a terminal: past meetings, search and summaries."""
    from notetaker.budget import plan_for, settings_for
    from notetaker.tui.app import make_app

    settings = settings_for(settings, plan_for(settings))  # browsing works even where the config does not fit
    _write_templates(settings)
    store = open_store(settings)
    try:
        _run_app(make_app(build_deps(settings, store), live=False))
    finally:
        store.close()
    return EXIT_OK


def _report(result, store, stopped: int | None, sessions_dir: Path | None = None) -> int:
    """One line on stderr once the terminal is back: what was saved, and where its audio is."""
    from notetaker.recorder import RecordingResult

    if isinstance(result, str) and result:  # the live screen's reason for stopping, if it gives one
        print(f"notetaker: {result}", file=sys.stderr)
        return EXIT_INTERNAL
    if isinstance(result, RecordingResult):
        sid, status, finals, seconds = result.session_id, result.status, result.finals, result.duration_s
    elif stopped is not None:  # quit while recording: the recorder ended the session on its way out
        s = store.get_session(stopped)
        sid, status, finals, seconds = s.id, s.status, len(store.segments(s.id)), s.duration_s
    else:
        return EXIT_OK
    where = _audio_where(sessions_dir, sid) if sessions_dir is not None else ""
    print(f"session {sid} {status}: {finals} segments, {duration_text(seconds)} of audio{where} "
          f"(`notetaker show {sid}`)", file=sys.stderr)
    return EXIT_OK  # quitting is how a meeting ends: whatever was heard is saved


def _audio_where(sessions_dir: Path, session_id: int) -> str:
    """Where the meeting's audio was kept: its compacted FLAC, the raw spool (a meeting
    that did not end cleanly), or nowhere (`keep_audio = false`)."""
    from notetaker.audio.file import path_text
    from notetaker.spool import FLAC, RAW, spool_folder

    folder = spool_folder(sessions_dir, session_id)
    for name in (FLAC, RAW):
        if (folder / name).is_file():
            return f" in {path_text(folder / name)}"
    return ", audio not kept (keep_audio is off)"
