"""The one start-up path: settings → memory plan → checks → downloads → engine and rewrite
factories. The CLI commands and the TUI launch go down it the same way.

Everything a user can get wrong is checked here before anything loads, downloads or is
saved: the plan (a configuration that does not fit is one line), the engine name, the
language and the delay, the model (found locally or downloaded now, where progress can be
seen) and the rewrite backend's name. Weights load later, on the thread that calls the
factories (the compute thread), so capture and the TUI can start at once.

This module prints nothing but the download notices (`say`, on stderr) and never imports
the CLI or the TUI.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from asr.base import Engine, SessionOptions

from notetaker.config import ENV_PREFIX, ConfigError, Settings, ensure_home

if TYPE_CHECKING:
    from notetaker.budget import Plan
    from notetaker.diarization import Diarization

SETTING_NAMES = frozenset(f.name for f in fields(Settings))


def say(line: str) -> None:
    """A notice on stderr that the user must see, on a terminal or not (never a silent download)."""
    print(f"notetaker: {line}", file=sys.stderr, flush=True)


def open_store(settings: Settings, readonly: bool = False):
    """The meeting store; `readonly` for commands that only read: they never write the
    file, so they work on a full disk (and never create a home that is not there)."""
    from storage import SessionStore

    if readonly:
        return SessionStore.open_readonly(settings.db_path)
    ensure_home(settings)
    return SessionStore.open(settings.db_path)


# -- settings → plan ---------------------------------------------------------------------------


def plan_checked(settings: Settings) -> tuple[Settings, Plan]:
    """The memory plan for these settings, checked before anything loads or downloads: a
    configuration that does not fit is one line naming the nearest one that does. Returns
    the settings with the plan's choices filled in, and the plan."""
    from rewrite.registry import backend_name

    from notetaker.budget import plan_for, settings_for

    if settings.rewrite_backend is not None:
        backend_name(settings.rewrite_backend)  # an unknown name: one line before any planning
    plan = plan_for(settings)
    if not plan.fits:
        raise ConfigError(f"{plan.problem}; nearest that fits: {plan.suggestion}" if plan.suggestion
                          else plan.problem)
    return settings_for(settings, plan), plan


def context_tokens(plan: Plan) -> int | None:
    """The context the plan gives an mlx rewrite model (None: no rewrite model planned)."""
    return plan.rewrite.context if plan.rewrite is not None else None


# -- checks ------------------------------------------------------------------------------------


def check_engine_options(settings: Settings) -> tuple[str, str]:
    """The engine name, model label, language and delay checked without loading or
    downloading anything (the language first: a wrong one must not cost a download).
    Returns (engine, model label)."""
    from asr.registry import DEFAULT_ENGINE, check_options, default_model, family

    name = family(settings.engine or DEFAULT_ENGINE).name
    model = settings.model or default_model(name)
    check_options(name, model, settings.language, settings.delay_ms)
    return name, model


def check_rewrite(settings: Settings, name: str | None = None) -> str:
    """The rewrite backend's name (`name`, else the flag's or the config's), and the settings
    its spec says it needs, checked without loading it; the model itself loads later."""
    from rewrite.base import RewriteError
    from rewrite.registry import NONE, backend_name, backend_spec

    name = backend_name(name or settings.rewrite_backend)
    if name == NONE:
        return name
    for need, what in backend_spec(name).needs.items():
        # what the app fills in itself (where probe scores are kept) is not the user's to set
        if need in SETTING_NAMES and not getattr(settings, need):
            found = ""
            if need == "openai_base_url":  # none set and none found running (or the plan would have it)
                from notetaker.servers import detect_ports

                ports = detect_ports(settings)
                found = f", and no server answers on ports {', '.join(map(str, ports))}" if ports else ""
            raise RewriteError(f"the {name} backend needs {what}: set {need} in the config "
                               f"or {ENV_PREFIX}{need.upper()}{found}")
    return name


def session_options(settings: Settings, partials: bool = True, engine: Engine | None = None,
                    **more) -> SessionOptions:
    """The options a session starts with; the delay only for an engine that has delay
    control (asked of the loaded `engine`, else of the configured engine's family)."""
    from asr.registry import DEFAULT_ENGINE, family

    if engine is not None:
        delay = engine.capabilities.delay_control
    else:
        delay = family(settings.engine or DEFAULT_ENGINE).capabilities.delay_control
    return SessionOptions(language=settings.language, partials=partials, context=settings.context,
                          vocabulary=settings.vocabulary, delay_ms=settings.delay_ms if delay else None, **more)


# -- downloads ---------------------------------------------------------------------------------


def fetch_planned(settings: Settings, plan: Plan, rewrite: bool = True) -> None:
    """Download what the plan needs and is not here yet, then give MLX the plan's limits.
    `rewrite=False`: the speech model only."""
    from notetaker.budget import apply_limits, plan_for

    if _pull_missing(settings, [plan.asr] + ([_planned_llm(plan)] if rewrite else [])):
        fresh = plan_for(settings)  # what is on disk now wins over the published numbers
        plan.memory_limit, plan.cache_limit = fresh.memory_limit, fresh.cache_limit
    apply_limits(plan)


def _planned_llm(plan: Plan):
    return plan.rewrite if plan.rewrite_backend == "mlx" else None


def _pull_missing(settings: Settings, wanted: list) -> bool:
    """Download catalogue models the plan needs (only the files the engine reads, with a
    progress bar on a terminal); other models download when they load."""
    from notetaker.budget import gb
    from notetaker.catalogue import by_name
    from notetaker.models import pull

    pulled = False
    for c in wanted:
        entry = by_name(c.name) if c is not None and not c.downloaded else None
        if entry is None or not settings.allow_download:
            continue
        say(f"downloading {c.name} ({entry.repo}, {gb(entry.download_bytes)})")
        pull(c.name, settings, progress=sys.stderr.isatty())
        pulled = True
    return pulled


def fetch_engine_model(settings: Settings) -> str:
    """Check the engine, model and language without loading weights; the model is
    downloaded here if it has to be. Returns the label "engine/model" for a status bar."""
    from asr.registry import resolve_model

    name, model = check_engine_options(settings)
    resolve_model(name, settings.model, settings.models_dir, settings.allow_download)
    return f"{name}/{model}"


def say_llm_download(settings: Settings) -> None:
    """One line before mlx-lm fetches a rewrite model the plan did not pull (the default when
    none is downloaded, a hub repo outside the catalogue): never a silent download."""
    from rewrite.mlx_llm import DEFAULT_MODEL

    from notetaker.budget import gb
    from notetaker.models import find

    spec = settings.rewrite_model or DEFAULT_MODEL
    item = find(spec, settings) if settings.allow_download and not Path(spec).expanduser().exists() else None
    if item is not None and item.repo is not None and item.state in ("missing", "partial"):
        size = gb(item.entry.download_bytes) if item.entry is not None else "size unknown until it is fetched"
        say(f"downloading {item.name} ({item.repo}, {size})")


# -- the way down, once ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """What start-up found: settings with the plan's choices, the plan, and the names the
    engine and the live rewrite backend will load under."""

    settings: Settings
    plan: Plan
    engine_label: str  # "whisper/tiny.en"
    rewrite: str  # the rewrite backend that runs during the meeting ("none": none, or after it)
    rewrite_off: str | None = None  # why cleanup is off though a backend was set up or asked for
    diarization: Diarization | None = None  # speaker labels: on, or off and why

    @property
    def context_tokens(self) -> int | None:
        return context_tokens(self.plan)


def plan_speakers(settings: Settings, plan: Plan, speakers: int | None = None, realtime: bool = True) -> Diarization:
    """Whether this meeting gets speaker labels (notetaker.budget.diarization_for says why not);
    never a reason to stop it."""
    from notetaker.budget import diarization_for
    from notetaker import models
    from notetaker.diarization import Diarization

    folder = models.diarization_folder(settings) if settings.diarize != "off" else None
    why = diarization_for(settings.diarize, folder is not None, plan, realtime)
    return Diarization(why is None, folder, speakers, why)


def prepare(settings: Settings, speakers: int | None = None, realtime: bool = True) -> Prepared:
    """Settings → plan → checks → downloads, before any weights load, for a meeting. A bad
    language or delay costs no download; a speech setup that does not fit costs nothing at
    all. The rewrite backend never stands in the meeting's way: one that does not fit, cannot
    be downloaded or lacks a setting leaves cleanup off (`rewrite_off` says why) and the
    meeting records; one that fails to load does the same later (the recorder loads it)."""
    from rewrite.base import RewriteError
    from rewrite.registry import backend_name

    backend_name(settings.rewrite_backend)  # a name that is no backend is a typo to fix: one line
    off = None
    try:
        settings, plan = plan_checked(settings)
    except (ConfigError, RewriteError) as e:
        plain = replace(settings, rewrite_backend="none")
        try:
            settings, plan = plan_checked(plain)
        except ConfigError:
            raise e from None  # the speech model alone does not fit: that is the problem
        off = str(e)
    check_engine_options(settings)
    fetch_planned(settings, plan, rewrite=False)
    label = fetch_engine_model(settings)
    rewrite = "none"
    llm = _planned_llm(plan)
    if off is None and llm is not None and not llm.downloaded:
        # A download (gigabytes) must not hold up the meeting's start; it is one command away.
        off = f"{llm.name} is not downloaded (`notetaker models pull {llm.name}`)"
    if off is None and plan.rewrite_live:
        try:
            rewrite = check_rewrite(settings)
        except RewriteError as e:
            off = str(e)
    return Prepared(settings, plan, label, rewrite, off, plan_speakers(settings, plan, speakers, realtime))


# -- factories -------------------------------------------------------------------------------


def load_engine(settings: Settings, name: str | None, model: str | None) -> Engine:
    """A speech engine by name and model (None: the default engine, its default model),
    from the settings' model folder, loaded on the calling thread."""
    from asr.registry import load_engine as load

    return load(name, model, cache_dir=settings.models_dir, allow_download=settings.allow_download)


def load_rewrite(settings: Settings, name: str | None = None, voxtral_engine=None, context_tokens: int | None = None):
    """The configured (or named) rewrite backend; None for `none`. Says on stderr when the
    Voxtral text mode fails its probe and mlx is used instead. `context_tokens`: the
    context the memory plan gives an mlx model."""
    from rewrite.registry import load_backend

    return load_backend(name or settings.rewrite_backend, settings.rewrite_model, cache_dir=settings.models_dir,
                        context_tokens=context_tokens,
                        allow_download=settings.allow_download, openai_base_url=settings.openai_base_url,
                        voxtral_engine=voxtral_engine,
                        voxtral_model=settings.model if settings.engine == "voxtral" else None,
                        probe_path=settings.home / "probes.json", report=say)


class Factories:
    """Loads the configured engine once, and rewrite backends by name, on the thread that
    calls them; the Voxtral text mode shares the loaded Voxtral engine."""

    def __init__(self, settings: Settings, context_tokens: int | None = None) -> None:
        self.settings = settings
        self.context_tokens = context_tokens
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = load_engine(self.settings, self.settings.engine, self.settings.model)
        return self._engine

    def rewrite(self, name: str | None):
        if not name or name == "none":
            return None
        # an engine whose decoder can also rewrite text (Voxtral) is shared, not loaded twice
        engine = self._engine
        shared = engine if engine is not None and engine.capabilities.rewrite_experimental else None
        return load_rewrite(self.settings, name, voxtral_engine=shared, context_tokens=self.context_tokens)

    def rewrite_choice(self, choice: RewriteChoice):
        return load_choice(self.settings, choice, self.context_tokens)

    def rewrite_choices(self) -> list[RewriteChoice]:
        return rewrite_choices(self.settings)

    def engine_by_name(self, name: str | None, model: str | None) -> Engine:
        """Any engine (recovering a meeting recorded with another one): loaded fresh each time."""
        return load_engine(self.settings, name, model)


@dataclass(frozen=True)
class RewriteChoice:
    """A rewrite model this machine can use now, as offered when a summary cannot be made."""

    label: str  # "llama-3.2-1b (on this machine)", "llama3.2:1b on Ollama at http://127.0.0.1:11434/v1"
    backend: str  # "mlx", "openai"
    model: str | None  # a name, folder or GGUF file for mlx; the served model for a server ("": its default)
    base_url: str | None = None  # openai: the server


def rewrite_choices(settings: Settings) -> list[RewriteChoice]:
    """The rewrite models available now: downloaded or registered ones (mlx), then every model
    of every server running here. Nothing is downloaded or loaded to find them."""
    from notetaker.models import scan
    from notetaker.servers import servers

    out = [RewriteChoice(f"{m.name} (on this machine)", "mlx", m.name)
           for m in scan(settings) if m.kind == "rewrite" and m.state == "complete"]
    for server in servers(settings):
        for model in server.models or ("",):
            out.append(RewriteChoice(f"{model or 'its default model'} on {server.label} at {server.url}", "openai",
                                     model, server.url))
    return out


def load_choice(settings: Settings, choice: RewriteChoice, context_tokens: int | None = None):
    """The backend for a RewriteChoice, loaded on the calling thread."""
    chosen = replace(settings, rewrite_model=choice.model or None,
                     openai_base_url=choice.base_url or settings.openai_base_url)
    return load_rewrite(chosen, choice.backend, context_tokens=context_tokens)


def without_asr(settings: Settings) -> Settings:
    """Settings for work that needs only a rewrite model (summaries): no speech model in the
    plan, and the rewrite backend the plan picks unless one was named."""
    return replace(settings, engine="none", model=None)
