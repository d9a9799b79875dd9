"""Speakers in the TUI: a meeting's transcript starts each turn with the speaker's name (or
label); `S` opens the speakers dialog to rename (enter) and merge (`m`, then enter on the
other); the live view shows new names on lines already there and on new finals."""

from __future__ import annotations

import asyncio
import threading

from textual.widgets import OptionList, Static

from notetaker.tui.app import make_app
from notetaker.tui.dialogs import SpeakersDialog
from notetaker.tui.screens.live import RecorderMessages
from notetaker.tui.screens.meeting import MeetingScreen
from storage import SessionStore

from .conftest import SIZE, drive, settle
from .test_live import deps_for, live, shown_finals


def call(store: SessionStore) -> int:
    """A call: mic is S1; the other side is S2 (twice in a row: one turn) and S3."""
    sid = store.create_session("Vendor call", "whisper", "tiny.en", started_at="2025-03-06T10:00:00Z")
    for text, start, channel, speaker in [("Thanks for joining.", 0.0, "mic", "S1"),
                                          ("Happy to be here.", 2.0, "system", "S2"),
                                          ("We can ship in May.", 4.0, "system", "S2"),
                                          ("And support is included.", 7.0, "system", "S3"),
                                          ("Great, send the quote.", 9.0, "mic", "S1")]:
        store.add_segment(sid, text, start, start + 1.8, channel=channel, speaker=speaker)
    store.finish_session(sid, "complete", duration_s=12.0)
    return sid


def lines(app) -> list[str]:
    transcript = app.screen.query_one("#transcript", OptionList)
    return [str(transcript.get_option_at_index(i).prompt) for i in range(transcript.option_count)]


async def open_meeting(pilot, sid: int) -> None:
    pilot.app.push_screen(MeetingScreen(pilot.app.deps, sid))
    await settle(pilot)


def test_the_meeting_shows_who_starts_each_turn(store, make_deps) -> None:
    sid = call(store)
    store.rename_speaker(sid, "S2", "Anya")
    seen: list[str] = []

    async def scenario(pilot):
        await open_meeting(pilot, sid)
        seen.extend(lines(pilot.app))

    drive(make_app(make_deps(store)), scenario)
    assert seen == ["[#1 00:00:00] S1 (mic): Thanks for joining.",
                    "[#2 00:00:02] Anya (system): Happy to be here.",
                    "[#3 00:00:04] We can ship in May.",
                    "[#4 00:00:07] S3 (system): And support is included.",
                    "[#5 00:00:09] S1 (mic): Great, send the quote."]


def test_s_renames_a_speaker_and_the_transcript_shows_the_name(store, make_deps) -> None:
    sid = call(store)
    seen: dict[str, object] = {}

    async def scenario(pilot):
        await open_meeting(pilot, sid)
        await pilot.press("S")
        await settle(pilot)
        assert isinstance(pilot.app.screen, SpeakersDialog)
        await pilot.press("down", "enter")  # S2
        await settle(pilot)
        await pilot.press(*"Anya", "enter")
        await settle(pilot)
        seen["listed"] = [str(o.prompt) for o in pilot.app.screen.query_one("#speakers", OptionList)._options]
        await pilot.press("escape")
        await settle(pilot)
        seen["lines"] = lines(pilot.app)
        # An empty name clears it: the label shows again.
        await pilot.press("S")
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        await pilot.press("ctrl+u", "enter")  # the name typed over with nothing
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        seen["cleared"] = lines(pilot.app)[1]

    drive(make_app(make_deps(store)), scenario)
    assert seen["listed"][1].split()[:2] == ["S2", "Anya"]
    assert seen["lines"][1] == "[#2 00:00:02] Anya (system): Happy to be here."
    assert seen["cleared"] == "[#2 00:00:02] S2 (system): Happy to be here."
    assert store.speaker_names(sid) == {}


def test_m_merges_one_speaker_into_another(store, make_deps) -> None:
    sid = call(store)
    store.rename_speaker(sid, "S2", "Anya")
    seen: dict[str, object] = {}

    async def scenario(pilot):
        await open_meeting(pilot, sid)
        await pilot.press("S")
        await settle(pilot)
        await pilot.press("down", "down", "m")  # take S3 ...
        await settle(pilot)
        seen["hint"] = str(pilot.app.screen.query_one("#merging", Static).render())
        await pilot.press("up", "enter")  # ... into S2
        await settle(pilot)
        seen["left"] = [o.id for o in pilot.app.screen.query_one("#speakers", OptionList)._options]
        await pilot.press("escape")
        await settle(pilot)
        seen["lines"] = lines(pilot.app)

    drive(make_app(make_deps(store)), scenario)
    assert seen["hint"].startswith("merge S3 into")
    assert seen["left"] == ["S1", "S2"]
    # S3's line now goes on Anya's turn.
    assert seen["lines"][2:4] == ["[#3 00:00:04] We can ship in May.", "[#4 00:00:07] And support is included."]
    assert [s.speaker for s in store.segments(sid)] == ["S1", "S2", "S2", "S2", "S1"]


def test_the_speakers_dialog(snap_compare, store, make_deps) -> None:
    sid = call(store)
    store.rename_speaker(sid, "S2", "Anya Petrova")
    app = make_app(make_deps(store))

    async def open_dialog(pilot):
        await open_meeting(pilot, sid)
        await pilot.press("S", "down", "down", "m")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_dialog)


def test_a_meeting_with_speakers(snap_compare, store, make_deps) -> None:
    sid = call(store)
    store.rename_speaker(sid, "S2", "Anya")
    app = make_app(make_deps(store))

    async def open_it(pilot):
        await open_meeting(pilot, sid)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_it)


def play_live(store, tmp_path, sid: int, said, then):
    """The live view of meeting `sid` with the recorder held back (its engine never loads):
    the test plays the recorder's events itself. `said` are shown as finals, then
    `then(pilot, app, screen, listener)` runs; returns what it returns."""
    from asr.base import ASRError

    hold = threading.Event()

    def held():
        hold.wait(30)
        raise ASRError("held back")

    async def run():
        deps = deps_for(store, tmp_path)
        deps.engine_factory = held
        app = make_app(deps, live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            screen = live(app)
            listener = RecorderMessages(screen)
            listener.on_started(store.get_session(sid))
            for seg in said:
                listener.on_final(None, seg)
            await pilot.pause(0.1)
            try:
                return await then(pilot, app, screen, listener)
            finally:
                hold.set()

    try:
        return asyncio.run(run())
    finally:
        hold.set()


def test_live_renames_apply_to_lines_shown_and_to_new_finals(store, tmp_path) -> None:
    sid = store.create_session("Live call", "whisper", "tiny.en")
    said = [store.add_segment(sid, text, t, t + 1.0, channel=ch, speaker=sp)
            for text, t, ch, sp in [("hello", 0.0, "mic", "S1"), ("hi there", 1.0, "system", "S2")]]

    async def rename(pilot, app, screen, listener):
        before = shown_finals(screen)
        await pilot.press("S", "down", "enter")
        await pilot.pause(0.1)
        await pilot.press(*"Anya", "enter")
        await pilot.pause(0.1)
        await pilot.press("escape")
        await pilot.pause(0.1)
        renamed = shown_finals(screen)
        listener.on_final(None, store.add_segment(sid, "and more", 2.0, 3.0, channel="system", speaker="S2"))
        await pilot.pause(0.1)
        return before, renamed, shown_finals(screen)

    before, renamed, after = play_live(store, tmp_path, sid, said, rename)
    assert before == ["[#1 00:00:00] S1 (mic) › hello", "[#2 00:00:01] S2 (system) › hi there"]
    assert renamed == ["[#1 00:00:00] S1 (mic) › hello", "[#2 00:00:01] Anya (system) › hi there"]
    assert after[-1] == "[#3 00:00:02] Anya (system) › and more"


def test_live_lines_take_the_labels_of_the_end_of_meeting_pass(store, tmp_path) -> None:
    """The offline pass relabels the stored segments at the end; the recorder says so
    (`on_relabelled`) and the lines shown take the new labels; a diarizer that fails is a
    warning, and the meeting goes on."""
    sid = store.create_session("Live call", "whisper", "tiny.en")
    said = [store.add_segment(sid, text, t, t + 1.0, speaker=sp)
            for text, t, sp in [("hello", 0.0, "S1"), ("hi there", 1.0, "S2"), ("me again", 2.0, "S3")]]

    async def relabel(pilot, app, screen, listener):
        before = shown_finals(screen)
        store.relabel(sid, {3: "S1"})  # what the offline pass does: S3 was S1 all along
        listener.on_relabelled(1)
        listener.on_speakers_error("the segmentation model would not load")
        await pilot.pause(0.1)
        return before, shown_finals(screen), [n.message for n in app._notifications]

    before, after, notes = play_live(store, tmp_path, sid, said, relabel)
    assert before[-1] == "[#3 00:00:02] S3 › me again"
    assert after == ["[#1 00:00:00] S1 › hello", "[#2 00:00:01] S2 › hi there", "[#3 00:00:02] S1 › me again"]
    assert "speaker labels are off: the segmentation model would not load" in notes


def test_f_finds_the_speakers_of_a_meeting_recorded_without_them(store, make_deps) -> None:
    sid = store.create_session("Standup", "whisper", "tiny.en", started_at="2025-03-06T10:00:00Z")
    for text, start in [("Morning all.", 0.0), ("Morning.", 2.0), ("Let us start.", 4.0)]:
        store.add_segment(sid, text, start, start + 1.5)
    store.finish_session(sid, "complete", duration_s=6.0)
    asked: list[tuple[int, bool]] = []

    def find(st: SessionStore, meeting: int) -> str:  # stands in for find_in_meeting: labels as found
        asked.append((meeting, threading.current_thread() is threading.main_thread()))
        st.relabel(meeting, {1: "S1", 2: "S2", 3: "S1"})
        return "2 speakers found; 3 segments labelled"

    def refused(st: SessionStore, meeting: int) -> str:
        from notetaker.diarization import FindError

        raise FindError("finding speakers needs the diarization models: `notetaker models pull diarization`")

    seen: dict[str, object] = {}

    async def scenario(pilot):
        await open_meeting(pilot, sid)
        await pilot.press("S")
        await settle(pilot)
        seen["before"] = [str(o.prompt) for o in pilot.app.screen.query_one("#speakers", OptionList)._options]
        await pilot.press("f")
        for _ in range(50):
            await pilot.pause(0.05)
            if asked and any("found" in str(n.message) for n in pilot.app._notifications):
                break
        await settle(pilot)
        seen["listed"] = [o.id for o in pilot.app.screen.query_one("#speakers", OptionList)._options]
        seen["said"] = [str(n.message) for n in pilot.app._notifications]
        await pilot.press("escape")
        await settle(pilot)
        seen["lines"] = lines(pilot.app)

    drive(make_app(make_deps(store, find_speakers=find)), scenario)
    assert seen["before"] == ["no speaker labels yet"]
    assert asked == [(sid, False)]  # once, off the UI thread
    assert seen["listed"] == ["S1", "S2"]
    assert seen["said"][-1] == "2 speakers found; 3 segments labelled"
    assert seen["lines"][:2] == ["[#1 00:00:00] S1: Morning all.", "[#2 00:00:02] S2: Morning."]

    errors: list[str] = []

    async def fails(pilot):
        await open_meeting(pilot, sid)
        await pilot.press("S")
        await settle(pilot)
        await pilot.press("f")
        for _ in range(50):
            await pilot.pause(0.05)
            errors[:] = [str(n.message) for n in pilot.app._notifications if n.severity == "error"]
            if errors:
                break

    drive(make_app(make_deps(store, find_speakers=refused)), fails)
    assert errors == ["finding speakers needs the diarization models: `notetaker models pull diarization`"]
    assert [s.speaker for s in store.segments(sid)] == ["S1", "S2", "S1"]  # as it was
