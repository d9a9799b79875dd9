"""The person's own notes in the TUI: typed beside the live transcript (`n`, Enter saves the
line with the meeting time, Escape back), shown in the meeting view, and read by a summary."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, Static

from notetaker.tui.app import make_app
from notetaker.tui.screens.meeting import MeetingScreen
from notetaker.tui.screens.search import hit_text
from notetaker.tui.screens.summary import SummaryScreen
from notetaker.tui.widgets.live_transcript import LiveTranscript
from notetaker.tui.widgets.notes_pane import NotesPane
from rewrite.prompts import OWN_NOTES_HEAD

from .conftest import drive, settle, summary_reply
from .test_live import deps_for, live, wait_for
from .test_snapshots import answered


def keys(text: str) -> list[str]:
    return ["space" if c == " " else c for c in text]


def shown_notes(screen) -> list[str]:
    return [str(w.render()) for w in screen.query(".note").results(Static)]


def test_typing_two_notes_saves_them_with_the_meeting_time(store, tmp_path):
    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=4.0, speed=1.0), live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "recording" and screen.progress is not None)
            pane = screen.query_one(NotesPane)
            assert not pane.display
            await pilot.press("n")
            assert pane.display and pane.input.has_focus
            # Keys of the live screen (space pauses, m marks, q finishes) are typed, not obeyed.
            await pilot.press(*keys("ship it on friday q m"), "enter")
            await wait_for(pilot, lambda: len(shown_notes(screen)) == 1)
            first_at = screen.progress.audio_s
            assert pane.input.value == "" and not screen.recorder.paused and screen.state == "recording"
            await wait_for(pilot, lambda: screen.progress.audio_s > first_at)  # the meeting moves on
            await pilot.press(*keys("**Dana** owns notes"), "enter")
            await wait_for(pilot, lambda: len(shown_notes(screen)) == 2)
            await pilot.press("enter")  # an empty line saves nothing
            await pilot.press("escape")
            assert screen.query_one(LiveTranscript).has_focus and pane.display
            sid, shown = screen.session_id, shown_notes(screen)
            await pilot.press("N")  # hides the pane
            assert not pane.display
            await wait_for(pilot, lambda: screen.state == "finished")
            await pilot.press("q")
        return sid, shown

    sid, shown = asyncio.run(run())
    notes = store.notes(sid)
    assert [n.text for n in notes] == ["ship it on friday q m", "**Dana** owns notes"]
    assert notes[0].t_s < notes[1].t_s
    assert shown == [f"[00:00:0{int(n.t_s)}] {n.text}" for n in notes]
    assert store.marks(sid) == []


def test_up_picks_a_saved_line_to_change_or_delete_and_escape_keeps_it(store, tmp_path):
    """↑ walks back through the saved lines into the field; Enter saves the change (its time
    stays), an emptied line is deleted, escape gives back what was being typed."""
    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=6.0, speed=1.0), live=True)
        seen: dict = {}
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "recording" and screen.progress is not None)
            pane = screen.query_one(NotesPane)
            await pilot.press("n")
            for count, text in enumerate(("alpha", "bravo", "charlie"), start=1):
                await pilot.press(*keys(text), "enter")
                await wait_for(pilot, lambda count=count: len(shown_notes(screen)) == count)
            await pilot.press(*keys("draft"))
            await pilot.press("up", "up")  # charlie, then bravo
            seen["picked"] = (pane.input.value, [w.id for w in screen.query(".note.editing")])
            await pilot.press("escape")  # stops editing; the field has the draft back, focus stays
            seen["escaped"] = (pane.input.value, pane.input.has_focus, pane.editing)
            await pilot.press("ctrl+u", "up", "up", *keys(" two"), "enter")  # bravo → "bravo two"
            await wait_for(pilot, lambda: any("bravo two" in t for t in shown_notes(screen)))
            await pilot.press("up", "up", "up", "ctrl+u", "enter")  # alpha, emptied: deleted
            await wait_for(pilot, lambda: len(shown_notes(screen)) == 2)
            await pilot.press("up", "down", "down")  # charlie, then past the last: a new line again
            seen["new_again"] = (pane.editing, pane.input.value)
            seen["sid"], seen["shown"] = screen.session_id, shown_notes(screen)
            await wait_for(pilot, lambda: screen.state == "finished", timeout=60)
            await pilot.press("q")
        return seen

    seen = asyncio.run(run())
    notes = store.notes(seen["sid"])
    assert seen["picked"][0] == "bravo" and len(seen["picked"][1]) == 1
    assert seen["escaped"] == ("draft", True, None)
    assert [n.text for n in notes] == ["bravo two", "charlie"]
    assert seen["shown"] == [f"[00:00:0{int(n.t_s)}] {n.text}" for n in notes]
    assert seen["new_again"] == (None, "")


def test_the_meeting_view_shows_the_notes(app, seeded):
    seeded.store.add_note(seeded.budget, 62.0, "push back on marketing")

    async def scenario(pilot):
        app.push_screen(MeetingScreen(app.deps, seeded.budget))
        await settle(pilot)
        text = str(app.screen.query_one("#meeting-notes-text", Static).render())
        assert "[00:01:02] push back on marketing" in text
        assert app.screen.query_one("#meeting-notes").display
        app.push_screen(MeetingScreen(app.deps, seeded.design))
        await settle(pilot)
        assert not app.screen.query_one("#meeting-notes").display

    drive(app, scenario)


def test_the_summary_prompt_has_the_notes(app, seeded, rewrite):
    seeded.store.add_note(seeded.budget, 14.0, "travel budget flat is the key point")
    rewrite.replies = [summary_reply(seeded)]

    async def scenario(pilot):
        app.push_screen(SummaryScreen(app.deps, seeded.budget, "mlx"))
        await settle(pilot)

    drive(app, scenario)
    (call,) = rewrite.made[-1].calls
    assert OWN_NOTES_HEAD in call.user and "- [00:14] travel budget flat is the key point" in call.user
    assert seeded.store.latest_summary(seeded.budget).backend == "scripted"


def test_search_says_a_hit_is_a_note(app, seeded):
    seeded.store.add_note(seeded.standup, 3.0, "remember the okapi")

    async def scenario(pilot):
        await pilot.press("slash", *"okapi")
        await answered(pilot, "okapi")
        screen = app.screen
        assert screen.query_one("#query", Input).value == "okapi"
        meeting, result = screen.results  # the meeting's row, then its hit under it
        assert meeting.hit is None and meeting.meeting.session_id == seeded.standup
        assert result.hit.is_note
        assert "[note 00:00:03]" in hit_text(result).plain
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MeetingScreen) and app.screen.session_id == seeded.standup

    drive(app, scenario)
