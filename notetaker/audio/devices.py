"""Audio devices: list them, choose one by name or index, find the system-audio (loopback)
input; and the outputs that playback uses.

Everything goes through PortAudio (sounddevice), imported only when a function here runs.
On Linux PortAudio speaks ALSA, and a desktop's PulseAudio or PipeWire shows up there only
as the `pulse` and `default` devices; its sources (microphones, and the `.monitor` of every
output, which is what "system audio" is) and its sinks (outputs) are listed here too, read
with `pactl`, and opened through PortAudio's `pulse` device with `PULSE_SOURCE` or
`PULSE_SINK` naming them (see `open_input`, `open_output`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from notetaker.errors import one_line

from .base import AudioError

INSTALL_PORTAUDIO = "install PortAudio: sudo apt-get install libportaudio2 (macOS: brew install portaudio)"
NO_INPUT = "no audio input device found; connect a microphone or choose one (see `notetaker doctor`)"
NO_OUTPUT = "no audio output device found; connect speakers or headphones (see `notetaker doctor`)"
# Names that mean "what the computer plays" rather than a microphone.
MONITOR_WORDS = (".monitor", "monitor of", "blackhole", "loopback", "soundflower", "stereo mix", "what u hear")
PACTL_TIMEOUT_S = 3.0
# PortAudio's ALSA plugin devices claim dozens of channels; past this we open two and downmix.
MAX_OPEN_CHANNELS = 8

_ENV_LOCK = threading.Lock()  # PULSE_SOURCE/PULSE_SINK are process-wide: one stream opens at a time
_open_streams = 0  # streams open through `open_input`: PortAudio must not be re-scanned under them
_count_lock = threading.Lock()


class PortAudioMissing(AudioError):
    """The PortAudio library is not installed: no device can be listed or opened."""


@dataclass(frozen=True)
class DeviceInfo:
    """One input (or output) device. `index` is the PortAudio device that opens it (for a
    PulseAudio source or sink: PortAudio's `pulse` device, with `pulse_source` or
    `pulse_sink` naming it); `channels` are its input (or output) channels."""

    index: int
    name: str
    channels: int
    default_rate: float
    is_default: bool
    is_monitor: bool
    hostapi: str = ""
    pulse_source: str | None = None
    pulse_sink: str | None = None

    @property
    def pulse_name(self) -> str | None:
        """The PulseAudio source or sink it is, or None for a PortAudio device."""
        return self.pulse_source if self.pulse_source is not None else self.pulse_sink

    @property
    def label(self) -> str:
        """How a person sees it in a list: `[3] USB Mic` or `mic_a (PulseAudio)`."""
        if self.pulse_name is not None:
            return f"{self.name} (PulseAudio)"
        return f"[{self.index}] {self.name}"

    @property
    def open_channels(self) -> int:
        """Channels to open: all of a real device's, two of a plugin's that claims dozens."""
        return max(1, self.channels if self.channels <= MAX_OPEN_CHANNELS else 2)

    @property
    def rate(self) -> int:
        return round(self.default_rate) or 48000


def load_sounddevice() -> Any:
    """The sounddevice module, or an AudioError saying how to install PortAudio."""
    try:
        import sounddevice as sd
    except OSError:  # "PortAudio library not found"
        raise PortAudioMissing(f"PortAudio library not found; {INSTALL_PORTAUDIO}") from None
    except ImportError:
        raise AudioError("the sounddevice package is missing; reinstall notetaker (pip install notetaker)") from None
    return sd


def looks_like_monitor(name: str) -> bool:
    low = name.lower()
    return any(word in low for word in MONITOR_WORDS)


def list_input_devices() -> list[DeviceInfo]:
    """Every input PortAudio can open, then PulseAudio/PipeWire sources where there are any.

    Raises AudioError when PortAudio is missing; an empty list when there is no input."""
    return _list_devices("input")


def list_output_devices() -> list[DeviceInfo]:
    """Every output PortAudio can open, then PulseAudio/PipeWire sinks where there are any.

    Raises AudioError when PortAudio is missing; an empty list when there is no output."""
    return _list_devices("output")


def _list_devices(kind: str) -> list[DeviceInfo]:
    sd = load_sounddevice()
    key = f"max_{kind}_channels"
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default = _default_index(sd, kind)
    except Exception as e:  # PortAudio not initialised, a host API failing to answer
        raise AudioError(f"cannot list audio devices: {reason(e)}") from None
    out = [
        DeviceInfo(
            index=i,
            name=d["name"],
            channels=int(d[key]),
            default_rate=float(d["default_samplerate"]),
            is_default=i == default,
            is_monitor=kind == "input" and looks_like_monitor(d["name"]),
            hostapi=hostapis[d["hostapi"]]["name"] if 0 <= d["hostapi"] < len(hostapis) else "",
        )
        for i, d in enumerate(devices)
        if d[key] > 0
    ]
    pulse = next((d for d in out if d.name == "pulse"), None)
    if pulse is not None:
        out += pulse_sources(pulse.index) if kind == "input" else pulse_sinks(pulse.index)
    return out


def _default_index(sd: Any, kind: str) -> int:
    column = 0 if kind == "input" else 1
    try:
        idx = sd.default.device[column]
        if idx is None or idx < 0:
            idx = sd.query_hostapis(sd.default.hostapi)[f"default_{kind}_device"]
        return int(idx)
    except Exception:
        return -1


def pulse_sources(pulse_index: int, run: Callable[..., str] | None = None) -> list[DeviceInfo]:
    """PulseAudio (or PipeWire's pulse server) sources, via `pactl`; none without it."""
    return _pulse_devices(pulse_index, "source", run)


def pulse_sinks(pulse_index: int, run: Callable[..., str] | None = None) -> list[DeviceInfo]:
    """PulseAudio (or PipeWire's pulse server) sinks (outputs), via `pactl`; none without it."""
    return _pulse_devices(pulse_index, "sink", run)


def _pulse_devices(pulse_index: int, kind: str, run: Callable[..., str] | None) -> list[DeviceInfo]:
    run = run or _pactl
    try:
        short = run("list", "short", f"{kind}s")
        info = run("info")
    except (OSError, subprocess.SubprocessError):
        return []
    default = ""
    for line in info.splitlines():
        if line.startswith(f"Default {kind.title()}:"):
            default = line.split(":", 1)[1].strip()
    out = []
    for line in short.splitlines():
        cols = line.split("\t")
        if len(cols) < 4:
            continue
        name, spec = cols[1], cols[3]
        m = re.search(r"(\d+)ch\s+(\d+)Hz", spec)
        channels, rate = (int(m.group(1)), float(m.group(2))) if m else (2, 48000.0)
        out.append(DeviceInfo(index=pulse_index, name=name, channels=channels, default_rate=rate,
                              is_default=name == default, is_monitor=kind == "source" and name.endswith(".monitor"),
                              hostapi="PulseAudio", **{f"pulse_{kind}": name}))
    return out


def _pactl(*args: str) -> str:
    if shutil.which("pactl") is None:
        raise OSError("pactl not found")
    return subprocess.run(["pactl", *args], capture_output=True, text=True, check=True,
                          timeout=PACTL_TIMEOUT_S, stdin=subprocess.DEVNULL).stdout


def _default_sink(run: Callable[..., str] | None = None) -> str | None:
    try:
        info = (run or _pactl)("info")
    except (OSError, subprocess.SubprocessError):
        return None
    for line in info.splitlines():
        if line.startswith("Default Sink:"):
            return line.split(":", 1)[1].strip() or None
    return None


def choose_device(spec: str | int | None, devices: list[DeviceInfo] | None = None,
                  kind: str = "input") -> DeviceInfo:
    """The device `spec` names: None (or "default") the default one; an index; an exact
    name; else a unique case-insensitive part of a name. Anything else is one AudioError line
    listing the candidates. `kind`: "input" or "output" (what is listed when `devices` is None)."""
    if devices is None:
        devices = list_input_devices() if kind == "input" else list_output_devices()
    if not devices:
        raise AudioError(NO_INPUT if kind == "input" else NO_OUTPUT)
    portaudio = [d for d in devices if d.pulse_name is None]
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "default")):
        exact = [d for d in portaudio if d.name == "default"] if spec is not None else []
        for d in exact or [d for d in portaudio if d.is_default] or portaudio or devices:
            return d
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        for d in portaudio:
            if d.index == index:
                return d
        raise AudioError(f"no {kind} device has index {index}; available: {_names(devices)}")
    text = str(spec).strip()
    for matches in ([d for d in devices if d.name == text],
                    [d for d in devices if d.name.lower() == text.lower()],
                    [d for d in devices if text.lower() in d.name.lower()]):
        if len(matches) == 1:
            return matches[0]
        if len({d.name for d in matches}) == 1 and matches:  # one device under several host APIs
            return next((d for d in matches if d.is_default), matches[0])
        if matches:
            raise AudioError(f"{kind} device {text!r} is ambiguous: it matches {_names(matches)}; "
                             "give more of the name or its index")
    raise AudioError(f"no {kind} device matches {text!r}; available: {_names(devices)}")


def default_system_device(devices: list[DeviceInfo] | None = None) -> DeviceInfo | None:
    """Where the computer's own output can be recorded: the monitor of the default
    PulseAudio/PipeWire output, or a loopback device (BlackHole, Loopback, ...); None if
    there is no such device."""
    devices = list_input_devices() if devices is None else devices
    monitors = [d for d in devices if d.is_monitor]
    if any(d.pulse_source for d in monitors):
        sink = _default_sink()
        for d in monitors:
            if sink and d.pulse_source == f"{sink}.monitor":
                return d
    return monitors[0] if monitors else None


def channel_devices(input_device: str | int | None = None, system: bool | str | int | None = None,
                    devices: list[DeviceInfo] | None = None) -> dict[str, str | int | DeviceInfo | None]:
    """The `devices` mapping for CaptureSource from flags and config: the microphone as
    "mic" (None: the default input), plus "system" when system audio is wanted (True: the
    default monitor or loopback device; a string or index: that device)."""
    out: dict[str, str | int | DeviceInfo | None] = {"mic": input_device}
    if system is True:
        found = default_system_device(devices)
        if found is None:
            raise AudioError(f"no system-audio (loopback or monitor) device found; {system_device_hint()}")
        out["system"] = found
    elif system not in (None, False, ""):
        out["system"] = system
    return out


def system_device_hint() -> str:
    if sys.platform == "darwin":
        return ("install a loopback device such as BlackHole (brew install blackhole-2ch) and send "
                "the meeting's output to it (a Multi-Output Device keeps your speakers on)")
    return "on Linux use PulseAudio or PipeWire (pipewire-pulse) and pactl: its output's .monitor is recorded"


def _names(devices: list[DeviceInfo], limit: int = 12) -> str:
    names = [d.label for d in devices]
    more = f", and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def reason(e: BaseException) -> str:
    """A PortAudio error as words: no class names, no error codes."""
    text = one_line(e)
    text = re.sub(r"^Error (opening|starting|stopping|closing) \w+:\s*", "", text)
    text = re.sub(r"\s*\[PaErrorCode -?\d+\]", "", text)
    return text.replace("Error", "error").strip() or "unknown problem"


# -- opening -------------------------------------------------------------------------------


@contextmanager
def _pulse_env(device: DeviceInfo) -> Iterator[None]:
    """Point PulseAudio's client library at the device's source or sink while a stream opens
    (it reads PULSE_SOURCE / PULSE_SINK when the ALSA `pulse` device connects)."""
    if device.pulse_name is None:
        yield
        return
    var = "PULSE_SOURCE" if device.pulse_source is not None else "PULSE_SINK"
    with _ENV_LOCK:
        old = os.environ.get(var)
        os.environ[var] = device.pulse_name
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old


def open_input(device: DeviceInfo, callback: Callable, finished_callback: Callable | None = None,
               *, blocksize: int = 0) -> Any:
    """An opened (not started) float32 InputStream on `device` at its native rate.

    Raises sounddevice.PortAudioError (the caller decides whether that is the user's problem
    or a device that is away for a moment)."""
    global _open_streams
    sd = load_sounddevice()
    with _pulse_env(device):
        stream = sd.InputStream(device=device.index, channels=device.open_channels, samplerate=device.rate,
                                dtype="float32", blocksize=blocksize, latency="high", callback=callback,
                                finished_callback=finished_callback)
    with _count_lock:
        _open_streams += 1
    return stream


def open_output(device: DeviceInfo, rate: int, channels: int) -> Any:
    """An opened (not started) float32 OutputStream on `device` for blocking writes; closed
    with `close_input` like an input stream (PortAudio is not re-scanned under it).

    Raises sounddevice.PortAudioError (a rate or channel count the device refuses, say)."""
    global _open_streams
    sd = load_sounddevice()
    with _pulse_env(device):
        stream = sd.OutputStream(device=device.index, channels=channels, samplerate=rate, dtype="float32")
    with _count_lock:
        _open_streams += 1
    return stream


def close_input(stream: Any) -> None:
    """Abort and close a stream from `open_input` or `open_output` (abort: a plain stop can hang on a dead device)."""
    global _open_streams
    if stream is None:
        return
    try:
        stream.abort(ignore_errors=True)
    except Exception:
        pass
    try:
        stream.close(ignore_errors=True)
    except Exception:
        pass
    with _count_lock:
        _open_streams = max(0, _open_streams - 1)


def refresh() -> bool:
    """Re-scan PortAudio's devices (it lists only what existed when it started). Skipped,
    returning False, while streams are open: a re-scan would close them."""
    if "sounddevice" not in sys.modules:
        return True  # the first import scans
    sd = sys.modules["sounddevice"]
    with _count_lock:
        if _open_streams:
            return False
        try:
            sd._terminate()
        finally:
            sd._initialize()
    return True
