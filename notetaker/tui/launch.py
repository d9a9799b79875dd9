"""Opening the TUI from the command line: `notetaker` (past meetings) and `notetaker record`
(straight into a live meeting).

Everything a user can get wrong is checked here, before the TUI takes the terminal and
before anything is saved: the input, the engine name, the model (found locally, or
downloaded now, where progress can be seen), the language and the rewrite backend's name.
The engine's weights then load inside the TUI (`AppDeps.engine_factory`, on the compute
thread), so the screen appears at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

from asr.base import ASRError, Engine, SessionOptions

from notetaker.cli import EXIT_INTERNAL, EXIT_OK, UsageError, in_terminal, open_store
from notetaker.config import Settings

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aiff", ".aif")
DELAY_ENGINES = ("voxtral",)  # engines with delay control (Capabilities.delay_control)
# Per engine: its model resolver and the languages it knows, checked without loading weights.
_PREFLIGHT = {
    "whisper": ("asr.whisper.engine:resolve_whisper", "asr.whisper.tokenizer:LANGUAGES"),
    "voxtral": ("asr.voxtral.engine:resolve_voxtral", "asr.voxtral.engine:LANGUAGES"),
    "qwen3": ("asr.qwen3.engine:resolve_qwen3", "asr.qwen3.config:LANGUAGE_NAMES"),
}


def _attr(spec: str):
    module, name = spec.split(":")
    return getattr(import_module(module), name)


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


def check_engine_options(settings: Settings) -> tuple[str, str]:
    """The engine name, model label, language and delay checked without loading or
    downloading anything. Returns (engine, model label)."""
    from asr.registry import DEFAULT_ENGINE, ENGINES, engine_names

    name = settings.engine or DEFAULT_ENGINE
    if name not in ENGINES:
        raise ASRError(f"unknown engine {name!r}; available: {', '.join(engine_names())}")
    model = settings.model or _attr(f"{ENGINES[name].split(':')[0]}:DEFAULT_MODEL")
    if name not in _PREFLIGHT:  # an engine without static checks: it checks itself when it loads
        return name, model
    lang = settings.language
    if lang:  # checked first: a wrong language must not cost a download
        known = tuple(_attr(_PREFLIGHT[name][1]))
        if lang not in known:
            listed = f"; it knows {', '.join(known)}" if len(known) <= 30 else ""
            raise ASRError(f"unknown language code {lang!r} for {name}{listed}")
        # English-only Whisper models say so in their name (tiny.en, openai/whisper-base.en)
        if name == "whisper" and lang != "en" and model.lower().endswith(".en"):
            raise ASRError(f"{model} is English-only; choose a multilingual model for {lang!r}")
    if name in DELAY_ENGINES:
        from asr.voxtral.session import delay_tokens

        delay_tokens(settings.delay_ms)
    return name, model


def preflight_engine(settings: Settings) -> str:
    """Check the engine, model and language without loading weights; the model is
    downloaded here if it has to be. Returns the label "engine/model" for the status bar."""
    name, model = check_engine_options(settings)
    if name in _PREFLIGHT:
        _attr(_PREFLIGHT[name][0])(settings.model, settings.models_dir, settings.allow_download)
    return f"{name}/{model}"


def preflight_rewrite(settings: Settings) -> str:
    """The rewrite backend's name (from the flag or the config) and what it needs without
    loading it; the model itself loads inside the TUI."""
    from rewrite.base import RewriteError
    from rewrite.registry import backend_name

    name = backend_name(settings.rewrite_backend)
    if name == "openai" and not settings.openai_base_url:
        raise RewriteError("the openai backend needs a server: set openai_base_url in the config "
                           "(e.g. http://127.0.0.1:8080) or NOTETAKER_OPENAI_BASE_URL")
    return name


def session_options(settings: Settings, partials: bool = True) -> SessionOptions:
    engine = settings.engine or "whisper"
    return SessionOptions(language=settings.language, partials=partials, context=settings.context,
                          delay_ms=settings.delay_ms if engine in DELAY_ENGINES else None)


def build_deps(settings: Settings, store, *, source_factory: Callable | None = None, title: str = "",
               realtime: bool = True, rewrite_backend: str | None = None, engine_label: str = "",
               context_tokens: int | None = None):
    """AppDeps from settings: factories that load the engine and the rewrite backend on the
    thread that calls them (the compute thread)."""
    from asr.registry import load_engine

    from notetaker.commands import load_rewrite
    from notetaker.tui.deps import AppDeps

    loaded: list[Engine] = []  # the engine, once loaded: the voxtral text mode shares it

    def engine_factory() -> Engine:
        if not loaded:
            loaded.append(load_engine(settings.engine, settings.model, cache_dir=settings.models_dir,
                                      allow_download=settings.allow_download))
        return loaded[0]

    def rewrite_factory(name: str):
        if not name or name == "none":
            return None
        shared = loaded[0] if loaded and loaded[0].name == "voxtral" else None
        return load_rewrite(settings, name, voxtral_engine=shared, context_tokens=context_tokens)

    return AppDeps(store=store, engine_factory=engine_factory, source_factory=source_factory,
                   rewrite_factory=rewrite_factory, options=session_options(settings, partials=realtime), title=title,
                   realtime=realtime, export_dir=Path.cwd(), templates_dir=settings.home / "templates",
                   rewrite_backend=rewrite_backend or settings.rewrite_backend or "none", engine_label=engine_label,
                   spool_dir=settings.sessions_dir, keep_audio=settings.keep_audio,
                   engine_loader=lambda name, model: load_engine(name, model, cache_dir=settings.models_dir,
                                                                 allow_download=settings.allow_download))


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
    However the TUI closes (`q`, ctrl+q, the command palette), a meeting still recording is
    stopped: Textual waits for the compute thread before `run` returns, and a recorder left
    running would keep that thread (and the process) busy, unseen."""
    exit_app = app.exit
    stopped: list[int | None] = []

    def exit_stopping_the_recorder(*args, **kwargs):
        recorder = getattr(app, "recorder", None)
        if recorder is not None and not recorder.finished:
            from notetaker.audio import FileSource

            # it saves what it heard and ends the session: complete for a live meeting
            recorder.stop(complete=not isinstance(recorder.source, FileSource))
            stopped.append(recorder.session_id)
        return exit_app(*args, **kwargs)

    app.exit = exit_stopping_the_recorder
    return app.run(), (stopped[0] if stopped else None)


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    """`notetaker record`: the TUI straight into a live meeting, from the microphone (and the
    system audio) or from a file played as if live."""
    from notetaker.audio import FileSource
    from notetaker.audio.file import path_text

    path = input_file(args.input or settings.input_device)
    realtime = args.realtime
    if path is not None:
        FileSource.open(path, realtime=realtime, speed=args.speed).close()  # AudioError: one line, nothing saved

        def source_factory():
            return FileSource.open(path, realtime=realtime, speed=args.speed)
        title = args.title or path_text(path.stem)
    else:
        from notetaker.audio.capture import CaptureSource

        devices, mix = capture_devices(args, settings)
        CaptureSource(devices, mix=mix).close()  # a missing PortAudio or device: one line, nothing saved

        def source_factory():
            return CaptureSource(devices, mix=mix)
        realtime = True
        title = args.title or f"Meeting {time.strftime('%Y-%m-%d %H:%M')}"
    from notetaker.commands import fetch_planned, plan_checked

    settings, plan = plan_checked(settings)
    check_engine_options(settings)  # before anything downloads
    fetch_planned(settings, plan)
    label = preflight_engine(settings)
    rewrite = preflight_rewrite(settings) if plan.rewrite_live else "none"
    _need_terminal("notetaker record")
    from notetaker.tui.app import make_app

    _write_templates(settings)
    store = open_store(settings)
    try:
        deps = build_deps(settings, store, title=title, realtime=realtime, engine_label=label,
                          rewrite_backend=rewrite, source_factory=source_factory,
                          context_tokens=plan.rewrite.context if plan.rewrite is not None else None)
        deps.audio_path = path_text(path.resolve()) if path is not None else None
        deps.memory_budget_bytes = plan.budget
        deps.memory_planned_bytes = sum(c.footprint.total for c in plan.during if c.footprint)
        result, stopped = _run_app(make_app(deps, live=True))
        return _report(result, store, stopped)
    finally:
        store.close()


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


def _report(result, store, stopped: int | None) -> int:
    """One line on stderr once the terminal is back: what was saved."""
    from notetaker.commands import duration
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
    print(f"session {sid} {status}: {finals} segments, {duration(seconds)} of audio (`notetaker show {sid}`)",
          file=sys.stderr)
    return EXIT_OK  # quitting is how a meeting ends: whatever was heard is saved
