"""Snapshots of correcting a transcript: the edit dialog (meeting view and live view), a
replace's preview, and the meeting after an undo. Same fixed store, times and size as
test_snapshots.py; after an intended change of look, `--snapshot-update` and look at the SVGs."""

from __future__ import annotations

from notetaker.tui.screens.meeting import MeetingScreen

from .conftest import SIZE, settle
from .test_snapshots import _live, _release_later, _shoot


async def _meeting_at(pilot, seeded, segment: str) -> None:
    app = pilot.app
    app.push_screen(MeetingScreen(app.deps, seeded.budget, focus_segment_id=seeded.seg[segment]))
    await settle(pilot, 0.05)


def test_edit_dialog_in_the_meeting_view(snap_compare, app, seeded):
    """`c` on a cleaned line: the dialog shows the cleaned text to edit and what was heard."""

    async def run_before(pilot):
        await _meeting_at(pilot, seeded, "budget1")
        await pilot.press("c", "ctrl+w", "ctrl+w", *"this quarter.")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_replace_dialog_with_its_preview(snap_compare, app, seeded):
    """`f`, the words to find and the replacement typed: each line that changes, the words
    taken out struck through, the words put in."""

    async def run_before(pilot):
        await _meeting_at(pilot, seeded, "budget0")
        await pilot.press("f", *"budget", "enter", *"spending plan")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_meeting_after_an_edit_a_replace_and_an_undo(snap_compare, app, seeded):
    """The replace is undone as a whole; the edit made before it stays, marked ✎."""

    async def run_before(pilot):
        await _meeting_at(pilot, seeded, "budget0")
        await pilot.press("c", "ctrl+u", *"Good morning: the Q4 budget.", "enter")
        await settle(pilot)
        await pilot.press("f", *"budget", "enter", *"plan", "enter")
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        pilot.app.clear_notifications()  # a toast's fade depends on timing
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_live_edit_dialog_on_a_past_final(snap_compare, store, make_deps):
    """`c` in the live view opens on the newest final; ↑ went back to the first (cleaned)."""
    app, sid, feed, hold = _live(store, make_deps)

    async def run_before(pilot):
        await feed(pilot)
        await pilot.press("c", "up", "up")
        await pilot.pause(0.1)
        _release_later(hold)

    _shoot(snap_compare, app, hold, run_before)
