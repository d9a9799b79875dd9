"""`notetaker play` through a real output: a private PulseAudio null sink, whose monitor is
recorded with `parec` (not notetaker) while the CLI plays a meeting kept by the real spool.
What arrives must be the segment's own stored audio, of its own channel, at its length."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.app.conftest import CLI

from .playing import RATE, Monitor, clip, kept_meeting, match, silence, sounding_s
from .pulse import pulse_server

pytestmark = pytest.mark.slow

SINK = "speakers"
TRACEBACK = re.compile(r"Traceback|\b\w+(Error|Exception)\b:")
PAD_S = 0.25


@pytest.fixture(scope="module")
def pa():
    """Two null sinks at 16 kHz (the spool's rate: nothing resamples); `SINK` is the default
    output, `other` a second one that must stay silent."""
    with pulse_server((SINK, "other"), rate=RATE, default_sink=SINK) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


def mono_meeting(cli: CLI):
    """#1 es03 at 0 s, #2 es07 after half a second of silence: one channel (`mono`)."""
    a, b = clip("es03"), clip("es07")
    audio = np.concatenate([a, silence(0.5), b, silence(0.5)])
    t_b = (len(a) + int(0.5 * RATE)) / RATE
    return kept_meeting(cli.home, audio, ("mono",), [(0.0, len(a) / RATE, "first", None),
                                                     (t_b, t_b + len(b) / RATE, "second", None)]), t_b


def expected(meeting, start: float, end: float, column: int | None = None) -> np.ndarray:
    a, b = max(0, int(round((start - PAD_S) * RATE))), int(round((end + PAD_S) * RATE))
    audio = meeting.audio if column is None else meeting.audio[:, column]
    return audio[a:b]


def played(pa, cli: CLI, *args: str, sink: str = SINK, timeout: float = 90):
    monitor = Monitor(pa, sink).start()
    run = cli("play", *args, timeout=timeout)
    return run, monitor.stop()


def test_a_segment_arrives_at_the_sink_as_stored(pa, cli):
    meeting, t_b = mono_meeting(cli)
    run, heard = played(pa, cli, str(meeting.session_id), "--segment", "2")
    assert run.rc == 0, run.err
    assert "segment #2 of meeting" in run.err and "(PulseAudio)" not in run.err
    want = expected(meeting, t_b, t_b + len(clip("es07")) / RATE)
    assert match(heard, want) > 0.95  # the stored samples, at some delay
    assert match(heard, clip("es03")) < 0.5  # not the other segment
    assert abs(sounding_s(heard) - sounding_s(want)) < 0.15  # all of it, and no more


def test_a_system_segment_plays_the_system_channel(pa, cli):
    """mic and system overlap in time; the system segment must play system's column only."""
    mic = np.concatenate([clip("es03"), silence(3.0)])
    system = np.concatenate([silence(1.0), clip("es07")])
    n = max(len(mic), len(system))
    audio = np.stack([np.pad(mic, (0, n - len(mic))), np.pad(system, (0, n - len(system)))], axis=1)
    t_end = 1.0 + len(clip("es07")) / RATE
    meeting = kept_meeting(cli.home, audio, ("mic", "system"),
                           [(0.0, len(clip("es03")) / RATE, "mic words", "mic"), (1.0, t_end, "system words", "system")])
    run, heard = played(pa, cli, str(meeting.session_id), "--segment", "2", "--device", SINK)
    assert run.rc == 0, run.err
    assert "(system)" in run.err and f"{SINK} (PulseAudio)" in run.err
    assert match(heard, expected(meeting, 1.0, t_end, column=1)) > 0.95
    assert match(heard, expected(meeting, 1.0, t_end, column=0)) < 0.5


def test_an_interrupted_meeting_plays_from_the_raw_spool(pa, cli):
    a = clip("es12")
    meeting = kept_meeting(cli.home, a, ("mic",), [(0.0, len(a) / RATE, "words", "mic")], compact=False)
    assert (cli.home / "sessions" / str(meeting.session_id) / "audio.raw").is_file()
    run, heard = played(pa, cli, str(meeting.session_id), "--segment", "1", "--device", "other", sink="other")
    assert run.rc == 0, run.err
    assert match(heard, meeting.audio) > 0.95


def test_ctrl_c_stops_the_whole_meeting_cleanly(pa, cli):
    audio = np.concatenate([clip(n) for n in ("es03", "es07", "es12", "es04")])  # about 16 s
    meeting = kept_meeting(cli.home, audio, ("mono",), [(0.0, 3.0, "first", None)])
    monitor = Monitor(pa, SINK).start()
    # As from a terminal: a suite started in the background (`cmd &`) hands its children SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler.
    p = subprocess.Popen([sys.executable, "-m", "notetaker", "play", str(meeting.session_id)], cwd=cli.base,
                         env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    line = ""
    while "playing" not in line and time.monotonic() < deadline:
        line = p.stderr.readline()
    assert "playing all of meeting" in line
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    heard = monitor.stop()
    assert p.returncode == 130, err
    assert "stopped at 00:00:0" in err and not TRACEBACK.search(err)
    assert 0.5 < sounding_s(heard) < len(audio) / RATE - 5  # some of it, stopped well before its end
    assert match(heard, audio[: 2 * RATE]) > 0.9  # from the start of the meeting


def test_pulse_sinks_are_listed_and_chosen_as_outputs():
    """`pactl` answers as a real server does (a double for it: no server needed here)."""
    from notetaker.audio import AudioError
    from notetaker.audio.devices import choose_device, pulse_sinks

    short = ("0\tspeakers\tmodule-null-sink.c\ts16le 2ch 16000Hz\tRUNNING\n"
             "1\thdmi-stereo\tmodule-alsa-sink.c\ts32le 2ch 48000Hz\tIDLE\n")
    answers = {("list", "short", "sinks"): short, ("info",): "Default Sink: hdmi-stereo\nDefault Source: mic\n"}
    sinks = pulse_sinks(7, lambda *args: answers[args])
    assert [(d.name, d.pulse_sink, d.pulse_source, d.is_default, d.rate, d.index) for d in sinks] == [
        ("speakers", "speakers", None, False, 16000, 7), ("hdmi-stereo", "hdmi-stereo", None, True, 48000, 7)]
    assert choose_device("HDMI", sinks, kind="output").label == "hdmi-stereo (PulseAudio)"
    with pytest.raises(AudioError, match="no output device matches 'usb'; available: speakers"):
        choose_device("usb", sinks, kind="output")
    with pytest.raises(AudioError, match="no audio output device found"):
        choose_device(None, [], kind="output")


# -- what a user can get wrong: one line, exit 2 -------------------------------------------------


def one_line_error(run, *words: str) -> None:
    assert run.rc == 2, (run.rc, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("notetaker: "), run.err
    assert not TRACEBACK.search(run.err), run.err
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_inputs(pa, cli):
    meeting, _ = mono_meeting(cli)
    sid = str(meeting.session_id)
    one_line_error(cli("play", "99"), "99")
    one_line_error(cli("play", sid, "--segment", "7"), "no segment #7", "#1 to #2")
    one_line_error(cli("play", sid, "--segment", "1", "--device", "no such speaker"), "no output device matches")
    # a segment past the audio kept (a meeting whose transcript outran its audio)
    with __import__("storage").SessionStore.open(cli.db_path) as store:
        store.add_segment(meeting.session_id, "later", 60.0, 62.0)
    one_line_error(cli("play", sid, "--segment", "3"), "after the end of the audio kept")


def test_no_audio_kept(pa, cli):
    a = clip("es03")
    dropped = kept_meeting(cli.home, a, ("mono",), [(0.0, 3.0, "words", None)], keep=False)
    one_line_error(cli("play", str(dropped.session_id)), "keep_audio is off")
    with __import__("storage").SessionStore.open(cli.db_path) as store:
        imported = store.create_session("Imported", "whisper", "tiny.en")
        store.add_segment(imported, "words", 0.0, 1.0)
    one_line_error(cli("play", str(imported), "--segment", "1"), "has no audio kept")


def test_a_damaged_flac_is_one_line_and_left_alone(pa, cli):
    meeting, _ = mono_meeting(cli)
    flac = cli.home / "sessions" / str(meeting.session_id) / "audio.flac"
    data = bytearray(flac.read_bytes())
    data[:4] = b"JUNK"
    flac.write_bytes(bytes(data))
    run = cli("play", str(meeting.session_id), "--segment", "1")
    one_line_error(run, "not readable FLAC")
    assert flac.read_bytes() == bytes(data)  # nothing was "repaired" away
