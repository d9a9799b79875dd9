"""Live capture through a real device: a private PulseAudio server (null sinks, their monitors,
remapped sources) recorded by PortAudio through sounddevice, resampled from 48 kHz, and
transcribed by the bundled Whisper tiny.en. Only the error paths a machine cannot produce on
demand (no PortAudio library, no device at all) are simulated.
"""

from __future__ import annotations

import builtins
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from notetaker.audio import AudioError
from notetaker.audio.capture import CaptureSource
from notetaker.audio.devices import (
    PortAudioMissing,
    channel_devices,
    choose_device,
    default_system_device,
    list_input_devices,
)
from tests.support.wer import normalize

from .pulse import pulse_server

pytestmark = pytest.mark.slow

SR = 16000
SPEECH = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
TRANSCRIPTS = dict(line.split("\t") for line in (SPEECH / "transcripts.tsv").read_text().splitlines() if line)
STOPWORDS = set("a an the to of and or but for with any all you your we our i me my it its is was be can will "
                "have has not yet why let's lets".split())
CLASS_NAME = re.compile(r"\b\w*(Error|Exception)\b|Traceback")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pa():
    """sink_a is what the microphone hears (mic_a remaps its monitor); sink_b is the speakers,
    the default output, whose monitor is the system audio. Both run at 48 kHz."""
    with pulse_server(("sink_a", "sink_b"), {"mic_a": "sink_a"}, default_sink="sink_b",
                      default_source="mic_a") as server:
        yield server


@pytest.fixture(scope="module")
def engine():
    from asr.registry import load_engine

    return load_engine("whisper")


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tones")
    out = {}
    for name, freq, seconds, amp in (("a440", 440, 0.4, 0.5), ("b1000", 1000, 0.4, 0.5), ("hum", 200, 3.6, 0.2)):
        t = np.arange(int(seconds * 48000)) / 48000
        out[name] = folder / f"{name}.wav"
        sf.write(out[name], (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), 48000, subtype="FLOAT")
    return out


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, Path]:
    """The espeak clips as 48 kHz WAVs, the sinks' own rate: PulseAudio plays them untouched,
    so the only resampling is ours (48 kHz to 16 kHz)."""
    import soxr

    folder = tmp_path_factory.mktemp("speech48k")
    out = {}
    for clip in ("es03", "es07", "es12", "es04"):
        audio, rate = sf.read(SPEECH / f"{clip}.flac", dtype="float32")
        out[clip] = folder / f"{clip}.wav"
        sf.write(out[clip], soxr.resample(audio, rate, 48000, quality="VHQ"), 48000, subtype="FLOAT")
    return out


class Reader(threading.Thread):
    """Iterates a source the way the recorder's producer thread does, keeping every block."""

    def __init__(self, source: CaptureSource) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.blocks: list[np.ndarray] = []
        self.error: BaseException | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            for block in self.source:
                self.blocks.append(block)
        except BaseException as e:
            self.error = e
        finally:
            self.ended.set()

    def begin(self) -> float:
        self.start()
        return time.monotonic()

    def finish(self, timeout: float = 10.0) -> np.ndarray:
        self.source.close()
        assert self.ended.wait(timeout), "iteration did not end after close()"
        assert self.error is None, self.error
        return np.concatenate(self.blocks)


def transcribe(engine, audio: np.ndarray) -> str:
    from asr.base import Final, SessionOptions

    session = engine.start_session(SessionOptions(partials=False))
    session.feed_audio(np.ascontiguousarray(audio))
    events = []
    while not session.idle:
        events += session.step()
    events += session.finish()
    return " ".join(e.text for e in events if isinstance(e, Final))


def content_words(text: str) -> set[str]:
    return {w for w in normalize(text) if w not in STOPWORDS}


def assert_heard(text: str, clip: str) -> None:
    want = content_words(TRANSCRIPTS[clip])
    got = content_words(text)
    assert len(want & got) >= 0.75 * len(want), f"{clip}: expected {sorted(want)}, heard {text!r}"


def onset(x: np.ndarray, start_s: float = 0.0, threshold: float = 0.05) -> float:
    """Seconds to the first sample above `threshold`, searching from `start_s`."""
    i0 = int(start_s * SR)
    hits = np.flatnonzero(np.abs(x[i0:]) > threshold)
    assert len(hits), "no sound found"
    return (i0 + hits[0]) / SR


def lead_in(clip: str) -> float:
    audio, rate = sf.read(SPEECH / f"{clip}.flac", dtype="float32")
    return onset_at(audio, rate)


def onset_at(x: np.ndarray, rate: int, threshold: float = 0.05) -> float:
    return float(np.flatnonzero(np.abs(x) > threshold)[0] / rate)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


# -- devices ----------------------------------------------------------------------------------------


def test_devices_are_listed_and_chosen_by_default_index_exact_name_or_unique_part(pa):
    devices = list_input_devices()
    by_name = {d.name: d for d in devices}
    assert {"mic_a", "sink_a.monitor", "sink_b.monitor", "pulse"} <= set(by_name)
    assert by_name["sink_b.monitor"].is_monitor and not by_name["mic_a"].is_monitor
    assert by_name["mic_a"].default_rate == 48000 and by_name["mic_a"].is_default

    assert choose_device(None).is_default
    assert choose_device("mic_a").pulse_source == "mic_a"
    assert choose_device("MIC_A").name == "mic_a"  # case does not matter
    assert choose_device("sink_b.mon").name == "sink_b.monitor"  # a unique part of a name
    pulse = by_name["pulse"]
    assert choose_device(pulse.index) == pulse == choose_device(str(pulse.index))

    system = default_system_device()
    assert system is not None and system.name == "sink_b.monitor"  # the default output's monitor

    with pytest.raises(AudioError) as ambiguous:
        choose_device("monitor")
    message = str(ambiguous.value)
    assert "ambiguous" in message and "sink_a.monitor" in message and "sink_b.monitor" in message
    with pytest.raises(AudioError) as nothing:
        choose_device("no such microphone")
    assert "no input device matches" in str(nothing.value) and "mic_a" in str(nothing.value)
    with pytest.raises(AudioError, match="index 999"):
        choose_device(999)
    for e in (ambiguous.value, nothing.value):
        assert "\n" not in str(e) and not CLASS_NAME.search(str(e))

    with pytest.raises(AudioError, match="no input device matches"):
        CaptureSource({"mic": "no such microphone"})

    # What `--input`, `--system [DEVICE]` and the config turn into.
    assert channel_devices(None, None) == {"mic": None}
    assert channel_devices("mic_a", True) == {"mic": "mic_a", "system": system}
    assert channel_devices("mic_a", "sink_a.monitor") == {"mic": "mic_a", "system": "sink_a.monitor"}
    with pytest.raises(AudioError, match="no system-audio"):
        channel_devices(None, True, [by_name["mic_a"]])


def test_no_input_device_is_one_line_pointing_at_doctor():
    with pytest.raises(AudioError) as e:
        choose_device(None, [])
    assert "no audio input device" in str(e.value) and "notetaker doctor" in str(e.value)


def test_missing_portaudio_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    for attempt in (list_input_devices, lambda: CaptureSource({"mic": None})):
        with pytest.raises(PortAudioMissing) as e:
            attempt()
        message = str(e.value)
        assert "apt-get install libportaudio2" in message and "brew install portaudio" in message
        assert "\n" not in message and not CLASS_NAME.search(message)


# -- capture, transcribed ----------------------------------------------------------------------------


def test_mic_and_system_are_separate_aligned_channels_each_transcribed(pa, engine, speech):
    source = CaptureSource({"mic": "mic_a", "system": default_system_device().name})
    assert source.channels == ("mic", "system")
    reader = Reader(source)
    t0 = reader.begin()
    time.sleep(0.3)
    played = time.monotonic() - t0
    mic, system = pa.play(speech["es03"], "sink_a"), pa.play(speech["es07"], "sink_b")
    assert mic.wait(15) == 0 and system.wait(15) == 0
    time.sleep(0.3)
    audio = reader.finish()
    elapsed = time.monotonic() - t0

    assert audio.ndim == 2 and audio.shape[1] == 2 and audio.dtype == np.float32
    assert source.position_s == pytest.approx(len(audio) / SR)
    assert abs(source.position_s - elapsed) < 0.3  # the timeline follows the wall clock
    assert source.dropped_frames == 0 and source.overruns == 0
    # Played at the same moment into two sinks, each clip starts where it was played, on its own channel.
    mic_on, system_on = onset(audio[:, 0]) - lead_in("es03"), onset(audio[:, 1]) - lead_in("es07")
    assert abs(mic_on - system_on) < 0.03
    assert abs(mic_on - played) < 0.2

    mic_text, system_text = transcribe(engine, audio[:, 0]), transcribe(engine, audio[:, 1])
    assert_heard(mic_text, "es03")
    assert_heard(system_text, "es07")
    # No bleed: neither channel hears the other's words.
    assert not content_words(mic_text) & content_words(TRANSCRIPTS["es07"]), mic_text
    assert not content_words(system_text) & content_words(TRANSCRIPTS["es03"]), system_text


def test_mixed_mode_is_one_channel_holding_both(pa, engine, speech):
    source = CaptureSource({"mic": "mic_a", "system": "sink_b.monitor"}, mix=True)
    assert source.channels == ("mix",)
    reader = Reader(source)
    reader.begin()
    time.sleep(0.3)
    assert pa.play(speech["es12"], "sink_a").wait(15) == 0  # me, then them
    assert pa.play(speech["es04"], "sink_b").wait(15) == 0
    time.sleep(0.3)
    audio = reader.finish()
    assert audio.ndim == 1
    text = transcribe(engine, audio)
    assert_heard(text, "es12")
    assert_heard(text, "es04")


# -- what can go wrong ----------------------------------------------------------------------------------


def test_a_reader_that_falls_behind_loses_counted_frames_from_a_bounded_queue(pa):
    source = CaptureSource({"mic": "mic_a"}, queue_s=0.3)
    blocks = iter(source)
    first = next(blocks)  # capture has started
    t0 = time.monotonic() - len(first) / SR
    time.sleep(1.2)  # not reading
    channel = source._ch[0]
    assert len(channel.items) <= channel.cap == 15  # 0.3 s of 20 ms callbacks: memory stays bounded
    assert source.dropped_frames > 0.5 * SR and source.overruns > 0
    got = [first]
    while source.position_s < time.monotonic() - t0 - 0.15:
        got.append(next(blocks))
    # What was lost became zeros of the same length: the timeline still matches the clock.
    assert abs(source.position_s - (time.monotonic() - t0)) < 0.25
    source.close()
    got += list(blocks)
    assert sum(map(len, got)) == round(source.position_s * SR)


def test_pause_discards_what_is_heard_and_stops_the_timeline(pa, tones):
    source = CaptureSource({"mic": "mic_a"})
    reader = Reader(source)
    t0 = reader.begin()
    time.sleep(0.4)
    source.pause()
    paused = time.monotonic()
    assert pa.play(tones["a440"], "sink_a").wait(10) == 0  # said while paused: never kept
    time.sleep(0.2)
    source.resume()
    paused = time.monotonic() - paused
    time.sleep(0.3)
    assert pa.play(tones["b1000"], "sink_a").wait(10) == 0
    time.sleep(0.3)
    audio = reader.finish()
    elapsed = time.monotonic() - t0
    loud = np.abs(audio) > 0.05
    bursts = np.flatnonzero(np.diff(loud.astype(np.int8)) == 1)
    assert len(bursts) >= 1 and (bursts[-1] - bursts[0]) / SR < 0.45  # one tone, the 1 kHz one
    spectrum = np.abs(np.fft.rfft(audio[loud.argmax(): loud.argmax() + SR // 4]))
    assert abs(np.argmax(spectrum) * 4 - 1000) < 20
    assert abs(source.position_s - (elapsed - paused)) < 0.25


def test_a_device_that_disappears_and_returns_continues_on_the_same_timeline(pa, tones):
    pa.add_source("mic_r", "sink_a")
    source = CaptureSource({"mic": "mic_r", "system": "sink_b.monitor"}, reconnect_s=10)
    reader = Reader(source)
    t0 = reader.begin()
    hum = [pa.play(tones["hum"], "sink_a"), pa.play(tones["hum"], "sink_b")]  # a steady sound on both
    time.sleep(0.6)
    pa.remove_source("mic_r")
    gone = time.monotonic() - t0
    time.sleep(0.6)
    assert source.missing == ("mic",) and not reader.ended.is_set()
    time.sleep(0.6)
    pa.add_source("mic_r", "sink_a")
    back = time.monotonic() - t0
    deadline = time.monotonic() + 5
    while source.missing and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not source.missing, "the device came back but capture did not resume"
    for p in hum:
        assert p.wait(10) == 0
    time.sleep(0.3)
    burst = time.monotonic() - t0
    mic, system = pa.play(tones["a440"], "sink_a"), pa.play(tones["b1000"], "sink_b")
    assert mic.wait(10) == 0 and system.wait(10) == 0
    time.sleep(0.3)
    audio = reader.finish()

    def level(col: int, a: float, b: float) -> float:
        return rms(audio[int(a * SR) : int(b * SR), col])

    assert level(0, 0.2, gone - 0.1) > 0.1  # the mic heard the hum until it went away,
    assert level(0, gone + 0.1, back - 0.05) == 0.0  # then zeros while it was away,
    assert level(0, back + 0.6, 3.3) > 0.1  # then the hum again once it was back;
    assert level(1, 0.2, 3.3) > 0.1  # the system channel never stopped
    assert 0.8 * (back - gone) * SR < source.dropped_frames < (back - gone + 1.2) * SR
    # After the gap both channels still line up with each other and with the clock.
    mic_on, system_on = onset(audio[:, 0], burst - 0.1, 0.3), onset(audio[:, 1], burst - 0.1, 0.3)
    assert abs(mic_on - system_on) < 0.03
    assert abs(mic_on - burst) < 0.2


def test_a_device_gone_for_good_ends_the_capture_with_everything_kept(pa, tones):
    pa.add_source("mic_g", "sink_a")
    source = CaptureSource({"mic": "mic_g", "system": "sink_b.monitor"}, reconnect_s=1.0)
    reader = Reader(source)
    t0 = reader.begin()
    time.sleep(0.3)
    assert pa.play(tones["a440"], "sink_a").wait(10) == 0
    time.sleep(0.2)
    pa.remove_source("mic_g")
    gone = time.monotonic() - t0
    assert reader.ended.wait(5), "capture did not end after the device stayed away"
    ended = time.monotonic() - t0
    assert reader.error is None
    assert gone + 0.9 < ended < gone + 2.5
    assert "mic" in source.ended_reason and "mic_g" in source.ended_reason
    audio = np.concatenate(reader.blocks)
    assert audio.shape[1] == 2 and source.position_s == pytest.approx(len(audio) / SR)
    assert source.position_s > gone + 0.8  # the system channel's audio up to the end is kept
    assert rms(audio[: int(gone * SR), 0]) > 0.05  # and so is the mic's, before it went
    assert source.dropped_frames > 0.8 * SR
