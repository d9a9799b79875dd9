"""A private PulseAudio server for capture tests: null sinks (speakers nobody hears), their
monitors (what system-audio capture records) and remapped sources (stand-in microphones).

Nothing of the machine's own audio is touched: the daemon runs with its own runtime folder,
home and socket, is started without the system's default.pa, and is stopped (then killed if
it must be) when the context ends. Audio played into a sink with `play` comes out of its
`.monitor` and of every remapped source on it, sample for sample.

Skips the test when PulseAudio, its tools or the ALSA plugin that lets PortAudio reach it
are not installed (Debian: pulseaudio pulseaudio-utils libasound2-plugins).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

PACKAGES = "pulseaudio pulseaudio-utils libasound2-plugins"
START_TIMEOUT_S = 10.0
WARM_TIMEOUT_S = 6.0


def _alsa_pulse_plugin() -> bool:
    patterns = ("/usr/lib/*/alsa-lib/", "/usr/lib/alsa-lib/", "/usr/lib64/alsa-lib/", "/usr/local/lib/alsa-lib/")
    return any(glob.glob(p + "libasound_module_pcm_pulse.so") for p in patterns)


def missing() -> str | None:
    """Why a PulseAudio server cannot be started here, or None."""
    tools = [t for t in ("pulseaudio", "pactl", "pacmd", "paplay", "pacat", "parec") if shutil.which(t) is None]
    if tools:
        return f"{', '.join(tools)} not installed (apt-get install {PACKAGES})"
    if not _alsa_pulse_plugin():
        return f"the ALSA pulse plugin is not installed (apt-get install {PACKAGES})"
    return None


class PulseServer:
    """A running private server: its environment, sinks and sources, and ways to change them."""

    def __init__(self, root: Path, rate: int) -> None:
        self.root = root
        self.rate = rate
        self.runtime = root / "run"
        self.socket = self.runtime / "pulse" / "native"
        self.server = f"unix:{self.socket}"
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime), "HOME": str(root / "home"),
                    "XDG_CONFIG_HOME": str(root / "config"), "PULSE_SERVER": self.server,
                    "PULSE_COOKIE": str(root / "cookie")}
        self.env.pop("PULSE_SOURCE", None)
        self.env.pop("PULSE_SINK", None)
        self.sinks: list[str] = []
        self.sources: list[str] = []  # remapped sources (microphones)
        self.process: subprocess.Popen | None = None
        self._children: list[subprocess.Popen] = []

    # -- tools -----------------------------------------------------------------------------
    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def pacmd(self, *args: str) -> str:
        return subprocess.run(["pacmd", *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def play(self, path: str | os.PathLike[str], sink: str) -> subprocess.Popen:
        """Start playing a sound file into `sink`; wait on the returned process for its end."""
        p = subprocess.Popen(["paplay", f"--device={sink}", str(path)], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._children.append(p)
        return p

    def monitor(self, sink: str) -> str:
        return f"{sink}.monitor"

    # -- sources that come and go ----------------------------------------------------------------
    def add_source(self, name: str, sink: str) -> None:
        """A remapped source on `sink`'s monitor: a microphone that hears what `sink` plays."""
        self.pactl("load-module", "module-remap-source", f"source_name={name}", f"master={sink}.monitor",
                   f"source_properties=device.description={name}")
        if name not in self.sources:
            self.sources.append(name)

    def remove_source(self, name: str) -> None:
        """Make a source vanish the way unplugged hardware does for its clients: the source
        goes and the streams recording it fail. (PulseAudio itself would move them to
        another source instead, so they are killed once moved.)"""
        short = [line.split("\t") for line in self.pactl("list", "short", "sources").splitlines()]
        index = next(cols[0] for cols in short if cols[1] == name)
        outputs = [cols[0] for cols in (line.split("\t") for line in
                   self.pactl("list", "short", "source-outputs").splitlines()) if cols[1] == index]
        module = next(line.split("\t")[0] for line in self.pactl("list", "short", "modules").splitlines()
                      if "module-remap-source" in line and f"source_name={name} " in line + " ")
        self.pactl("unload-module", module)
        for out in outputs:
            subprocess.run(["pacmd", "kill-source-output", out], check=False, env=self.env,
                           capture_output=True, timeout=10)

    def source_names(self) -> list[str]:
        return [line.split("\t")[1] for line in self.pactl("list", "short", "sources").splitlines()]

    # -- life -------------------------------------------------------------------------------------
    def start(self, sinks: Sequence[str], sources: Mapping[str, str], default_sink: str | None,
              default_source: str | None) -> None:
        for d in ("run", "home", "config"):
            (self.root / d).mkdir(mode=0o700, exist_ok=True)
        lines = ["load-module module-native-protocol-unix auth-anonymous=1",
                 "load-module module-cli-protocol-unix"]
        for sink in sinks:
            lines.append(f"load-module module-null-sink sink_name={sink} rate={self.rate} channels=2 "
                         f"sink_properties=device.description={sink}")
        for name, sink in sources.items():
            lines.append(f"load-module module-remap-source source_name={name} master={sink}.monitor "
                         f"source_properties=device.description={name}")
        if default_sink:
            lines.append(f"set-default-sink {default_sink}")
        if default_source:
            lines.append(f"set-default-source {default_source}")
        script = self.root / "default.pa"
        script.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1",
             "--realtime=no", "--high-priority=no", "--disallow-exit=no", "--disable-shm=yes",
             f"--log-target=file:{self.root / 'pulse.log'}"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pulseaudio exited ({self.process.returncode}): {self.log_tail()}")
            try:
                self.pactl("info")
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pulseaudio did not start: {self.log_tail()}") from None
                time.sleep(0.05)
        self.sinks = list(sinks)
        self.sources = list(sources)
        # A null sink with nothing playing renders in 2 s blocks, so a new recording would
        # wait up to 2 s for its first frames: keep every sink busy with silence at a short
        # latency, and wait until every source delivers.
        for sink in sinks:
            self._children.append(subprocess.Popen(
                ["pacat", "--playback", f"--device={sink}", "--latency-msec=20", f"--rate={self.rate}",
                 "--channels=1", "--format=s16le", "--raw", "/dev/zero"],
                env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._warm([*sources, *(self.monitor(s) for s in sinks)])

    def _warm(self, sources: Sequence[str]) -> None:
        readers = {s: subprocess.Popen(["parec", f"--device={s}", "--latency-msec=20", "--raw", "--channels=1",
                                        "--format=s16le", f"--rate={self.rate}"],
                                       env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                   for s in sources}
        try:
            for p in readers.values():
                os.set_blocking(p.stdout.fileno(), False)
            waiting = set(readers)
            deadline = time.monotonic() + WARM_TIMEOUT_S
            while waiting and time.monotonic() < deadline:
                for s in list(waiting):
                    if readers[s].stdout.read(65536):
                        waiting.discard(s)
                time.sleep(0.02)
            if waiting:
                raise RuntimeError(f"no audio from {sorted(waiting)}: {self.log_tail()}")
        finally:
            for p in readers.values():
                p.kill()
                p.wait()
                p.stdout.close()

    def stop(self) -> None:
        for p in self._children:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stderr:
                p.stderr.close()
        self._children.clear()
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.pactl("exit")
            except (subprocess.SubprocessError, OSError):
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 8) -> str:
        try:
            return " | ".join((self.root / "pulse.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def pulse_server(
    sinks: Sequence[str] = ("sink_a", "sink_b"),
    sources: Mapping[str, str] | None = None,
    *,
    rate: int = 48000,
    default_sink: str | None = None,
    default_source: str | None = None,
) -> Iterator[PulseServer]:
    """Start a private PulseAudio with `sinks` (null sinks at `rate`) and `sources` (name →
    sink whose monitor it remaps); yield it; stop it. Skips the test if PulseAudio is missing.

    While it runs, this process talks to it (PULSE_SERVER) and PortAudio is re-scanned so
    sounddevice lists its `pulse` device; both are put back afterwards."""
    why = missing()
    if why:
        pytest.skip(why)
    sources = dict(sources or {})
    # A short path of our own: a unix socket path must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="nt-pulse-"))
    server = PulseServer(root, rate)
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_SOURCE", "PULSE_SINK", "PULSE_COOKIE")}
    try:
        server.start(sinks, sources, default_sink, default_source)
        os.environ["PULSE_SERVER"] = server.server
        os.environ["PULSE_COOKIE"] = server.env["PULSE_COOKIE"]  # never the user's own
        os.environ.pop("PULSE_SOURCE", None)
        os.environ.pop("PULSE_SINK", None)
        _rescan()
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _rescan()
        shutil.rmtree(root, ignore_errors=True)


def _rescan() -> None:
    from notetaker.audio.devices import refresh

    try:
        refresh()
    except Exception:
        pass
