"""`p` on a meeting's line plays its kept audio, `space` stops it: Pilot tests on a private
PulseAudio null sink whose monitor is recorded with `parec` (not notetaker), and a snapshot of
the line marked while it plays."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import OptionList

from notetaker.tui.app import make_app
from notetaker.tui.screens.meeting import MeetingScreen
from tests.audio.playing import RATE, Monitor, clip, kept_meeting, match, silence, sounding_s
from tests.audio.pulse import pulse_server

from .conftest import SIZE, drive, settle

pytestmark = pytest.mark.slow

SINK = "speakers"


@pytest.fixture(scope="module")
def pa():
    with pulse_server((SINK,), rate=RATE, default_sink=SINK) as server:
        yield server


@pytest.fixture
def meeting(tmp_path: Path, store):
    """es03, half a second of quiet, es07 (#2, 4.6 s), in the test store's database."""
    a, b = clip("es03"), clip("es07")
    t_b = (len(a) + RATE // 2) / RATE
    return kept_meeting(tmp_path, np.concatenate([a, silence(0.5), b, silence(0.5)]), ("mono",),
                        [(0.0, len(a) / RATE, "The first line.", None),
                         (t_b, t_b + len(b) / RATE, "The second line.", None)], title="Heard again")


def app_for(store, make_deps, tmp_path: Path, **overrides):
    values = {"spool_dir": tmp_path / "sessions", "output_device": SINK, **overrides}
    return make_app(make_deps(store, **values))


async def open_at(pilot, session_id: int, seq: int) -> MeetingScreen:
    screen = MeetingScreen(pilot.app.deps, session_id)
    pilot.app.push_screen(screen)
    await settle(pilot, 0.05)
    seg = next(s for s in screen.segments if s.seq == seq)
    assert screen.scroll_to_segment(seg.id)
    return screen


async def until(pilot, condition, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await pilot.pause(0.05)


def playing(screen: MeetingScreen) -> bool:
    return screen.query_one("#transcript", OptionList).has_class("playing")


def test_p_plays_the_selected_line_marked_until_it_ends(pa, store, make_deps, tmp_path, meeting):
    app = app_for(store, make_deps, tmp_path)
    monitor = Monitor(pa, SINK).start()
    seen: dict = {}

    async def scenario(pilot):
        screen = await open_at(pilot, meeting.session_id, 2)
        await pilot.press("p")
        seen["playing"] = playing(screen)
        seen["line"] = str(screen.query_one("#transcript", OptionList).get_option(str(screen.playback.segment_id)).prompt)
        await until(pilot, lambda: not playing(screen), what="the line to end")
        seen["after"] = str(screen.query_one("#transcript", OptionList).get_option(str(meeting_seg(screen, 2))).prompt)

    drive(app, scenario, SIZE)
    heard = monitor.stop()
    assert seen["playing"] and seen["line"].startswith("▶ [#2 ")
    assert seen["after"].startswith("[#2 ")  # the mark goes when it ends
    t_b = (len(clip("es03")) + RATE // 2) / RATE
    want = meeting.audio[int((t_b - 0.25) * RATE):int((t_b + len(clip("es07")) / RATE + 0.25) * RATE)]
    assert match(heard, want) > 0.95
    assert abs(sounding_s(heard) - sounding_s(want)) < 0.15


def meeting_seg(screen: MeetingScreen, seq: int) -> int:
    return next(s.id for s in screen.segments if s.seq == seq)


def test_space_stops_it_early(pa, store, make_deps, tmp_path, meeting):
    app = app_for(store, make_deps, tmp_path)
    monitor = Monitor(pa, SINK).start()

    async def scenario(pilot):
        screen = await open_at(pilot, meeting.session_id, 2)
        await pilot.press("p")
        assert playing(screen)
        await pilot.pause(1.0)
        await pilot.press("space")
        await until(pilot, lambda: not playing(screen), timeout=10, what="space to stop it")

    drive(app, scenario, SIZE)
    heard = monitor.stop()
    full = len(clip("es07")) / RATE
    assert 0.2 < sounding_s(heard) < full - 1.5  # some of the line, cut well short
    assert match(heard, clip("es07")[: RATE // 2]) > 0.9  # from the line's start


def test_a_line_without_audio_is_a_toast(pa, store, make_deps, tmp_path, meeting):
    """A meeting with no audio kept, and an output device that is not there: a toast each,
    nothing marked, the screen still works."""
    sid = store.create_session("No audio", "whisper", "tiny.en")
    store.add_segment(sid, "Nothing was kept of this.", 0.0, 2.0)
    store.finish_session(sid, "complete", duration_s=2.0)
    app = app_for(store, make_deps, tmp_path)
    toasts: list[str] = []

    async def scenario(pilot):
        screen = await open_at(pilot, sid, 1)
        await pilot.press("p")
        toasts.extend(n.message for n in pilot.app._notifications)
        assert not playing(screen)
        pilot.app.deps.output_device = "no such speaker"
        screen = await open_at(pilot, meeting.session_id, 1)
        await pilot.press("p")
        toasts.extend(n.message for n in pilot.app._notifications)
        assert not playing(screen) and screen.playback.player is None

    drive(app, scenario, SIZE)
    assert any(f"meeting {sid} has no audio kept" in t for t in toasts), toasts
    assert any("no output device matches 'no such speaker'" in t for t in toasts), toasts


def test_snapshot_of_a_line_playing(pa, snap_compare, store, make_deps, tmp_path):
    """A long line (16 s) so it is still playing when the screenshot is taken, however loaded
    the machine; the app's exit stops it."""
    audio = np.concatenate([clip(n) for n in ("es03", "es07", "es12", "es04")])
    meeting = kept_meeting(tmp_path, audio, ("mono",),
                           [(0.0, 2.0, "Before it.", None), (2.0, len(audio) / RATE - 0.5, "The long line.", None)],
                           title="Heard again")
    app = app_for(store, make_deps, tmp_path)

    async def run_before(pilot):
        screen = await open_at(pilot, meeting.session_id, 2)
        await pilot.press("p")
        assert playing(screen)
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_the_help_screen_lists_the_playback_keys():
    from notetaker.tui.screens.help import describe

    keys = dict(describe(MeetingScreen))
    assert keys["p"] == "Play" and keys["space"] == "Stop playing"
