"""Correcting a transcript in the TUI (Pilot): `c` edits a line, `u` undoes, `f` finds and
replaces with a preview; in the meeting view and, for past finals, in the live view while
new finals keep coming."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, OptionList, Static

from notetaker.tui.app import make_app
from notetaker.tui.dialogs import EditDialog, ReplaceDialog
from notetaker.tui.screens.meeting import MeetingScreen
from tests.app.scripted import final, partial
from tests.tui.test_live import deps_for, live, shown_finals, wait_for

from .conftest import BUDGET_LINES, drive, settle


async def open_meeting(pilot, app, seeded, segment: str) -> MeetingScreen:
    app.push_screen(MeetingScreen(app.deps, seeded.budget, focus_segment_id=seeded.seg[segment]))
    await settle(pilot, 0.05)
    assert isinstance(app.screen, MeetingScreen)
    return app.screen


def line_of(screen: MeetingScreen, segment_id: int) -> str:
    transcript = screen.query_one("#transcript", OptionList)
    return str(transcript.get_option_at_index(screen._index[segment_id]).prompt)


def test_c_edits_the_highlighted_line_from_what_it_shows(app, seeded):
    store = seeded.store

    async def scenario(pilot):
        screen = await open_meeting(pilot, app, seeded, "budget1")
        await pilot.press("c")
        dialog = app.screen
        assert isinstance(dialog, EditDialog)
        box = dialog.query_one("#text", Input)
        assert box.value == "Marketing asked for 12,000 more than last time."  # the cleaned text shown
        assert BUDGET_LINES[1] in str(dialog.query_one("#heard", Static).render())  # and what was heard
        await pilot.press("ctrl+u", *"Marketing asked for 12,000 dollars more.", "enter")
        await settle(pilot)
        assert app.screen is screen
        seg = store.get_segment(seeded.seg["budget1"])
        assert seg.text == BUDGET_LINES[1] and seg.edited_text == "Marketing asked for 12,000 dollars more."
        assert line_of(screen, seg.id).endswith("Marketing asked for 12,000 dollars more. ✎")
        assert screen.highlighted_segment_id == seg.id

        await pilot.press("c", "ctrl+u", *"never saved", "escape")  # escape: nothing changes
        await settle(pilot)
        assert store.get_segment(seg.id).edited_text == "Marketing asked for 12,000 dollars more."

        await pilot.press("u")
        await settle(pilot)
        assert store.get_segment(seg.id).edited_text is None
        assert line_of(screen, seg.id).endswith("Marketing asked for 12,000 more than last time.")
        await pilot.press("u")
        await settle(pilot)
        assert any("nothing to undo" in str(n.message) for n in app._notifications)

    drive(app, scenario)


def test_the_edit_dialog_steps_to_other_lines_and_refuses_an_empty_one(app, seeded):
    store = seeded.store

    async def scenario(pilot):
        screen = await open_meeting(pilot, app, seeded, "budget2")
        await pilot.press("c", "up", "up")
        dialog = app.screen
        assert dialog.query_one("#text", Input).value == BUDGET_LINES[0]
        await pilot.press("ctrl+u", "enter")  # empty: refused in place
        assert app.screen is dialog and dialog.query_one("#edit-problem").display
        await pilot.press(*"Good morning, budget time.", "enter")
        await settle(pilot)
        assert store.get_segment(seeded.seg["budget0"]).edited_text == "Good morning, budget time."
        assert store.get_segment(seeded.seg["budget2"]).edited_text is None
        assert screen.highlighted_segment_id == seeded.seg["budget0"]  # on the line edited

    drive(app, scenario)


def test_f_previews_each_change_and_applies_them_as_one_undo(app, seeded):
    store = seeded.store
    fillers = [seeded.seg[f"filler{n}"] for n in range(40)]

    async def scenario(pilot):
        screen = await open_meeting(pilot, app, seeded, "budget0")
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, ReplaceDialog)
        await pilot.press(*"NOBODY HAD")
        await pilot.pause()
        assert str(dialog.query_one("#replace-count").render()) == "40 lines change"
        await pilot.press("enter", *"everyone had")
        await pilot.pause()
        preview = str(dialog.query_one("#changes-text").render())
        assert "[#5 00:00:20] Item 0 was discussed briefly and nobody had concerns. → Item 0 was discussed " \
               "briefly and everyone had concerns." in preview
        assert all(store.get_segment(i).edited_text is None for i in fillers)  # a preview writes nothing
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert all(store.get_segment(i).display_text.endswith("everyone had concerns.") for i in fillers)
        assert line_of(screen, fillers[0]).endswith("everyone had concerns. ✎")
        await pilot.press("u")  # the whole replace, at once
        await settle(pilot)
        assert all(store.get_segment(i).edited_text is None for i in fillers)

    drive(app, scenario)


def test_f_can_add_the_replacement_to_the_vocabulary(app, seeded, tmp_path):
    from notetaker.vocabulary import add_term, configured_terms

    config = tmp_path / "config.toml"
    app.deps.add_to_vocabulary = lambda term: add_term(config, term)

    async def scenario(pilot):
        await open_meeting(pilot, app, seeded, "budget0")
        await pilot.press("f", *"nobody had", "enter", *"everyone had")
        dialog = app.screen
        assert isinstance(dialog, ReplaceDialog)
        dialog.query_one("#vocabulary").value = True
        dialog.query_one("#replacement").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert [n.message for n in app._notifications][-1].endswith("; “everyone had” added to the vocabulary")

    drive(app, scenario)
    assert configured_terms(config) == ("everyone had",)


def test_f_offers_no_vocabulary_box_where_there_is_no_config(app, seeded):
    async def scenario(pilot):
        await open_meeting(pilot, app, seeded, "budget0")
        await pilot.press("f")
        assert not app.screen.query("#vocabulary")

    drive(app, scenario)


def test_f_with_nothing_found_applies_nothing_and_escape_cancels(app, seeded):
    async def scenario(pilot):
        await open_meeting(pilot, app, seeded, "budget0")
        await pilot.press("f", *"zebra", "enter", *"horse", "enter")
        dialog = app.screen
        assert isinstance(dialog, ReplaceDialog)  # nothing to apply: it stays open
        assert str(dialog.query_one("#replace-count").render()) == "no line changes"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MeetingScreen)
        count = seeded.store.db.execute("SELECT COUNT(*) FROM segment_edits").fetchone()[0]
        assert count == 0

    drive(app, scenario)


# A final every half second for six seconds of audio (three seconds of wall time at speed 2).
STEADY = [c for n in range(12) for c in (partial(0.25 + n / 2, f"line {n}"),
                                        final(0.5 + n / 2, f"Final number {n}.", start=n / 2))]


def test_live_a_past_final_is_edited_while_finals_keep_coming(store, tmp_path):
    """The dialog opens on the newest final; ↑ goes back to the first. While it is open the
    meeting goes on; after saving, every final is shown once, in order, the first corrected."""

    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=6.5, speed=2.0, script=STEADY), live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: len(shown_finals(screen)) >= 2)
            await pilot.press("c")
            dialog = app.screen
            assert isinstance(dialog, EditDialog)
            newest = dialog.segment.seq
            for _ in range(newest - 1):
                await pilot.press("up")
            assert dialog.segment.seq == 1 and dialog.query_one("#text", Input).value == "Final number 0."
            await pilot.press(*" Kubernetes")
            opened_with = len(dialog.lines)
            await wait_for(pilot, lambda: len(shown_finals(screen)) >= opened_with + 3)  # they keep coming
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.state == "finished")
            await settle(pilot)
            finals = shown_finals(screen)
            sid = screen.session_id
            await pilot.press("u")  # undo in the live view too
            await settle(pilot)
            after_undo = shown_finals(screen)[0]
            await pilot.press("q")
        return finals, sid, after_undo

    finals, sid, after_undo = asyncio.run(run())
    stored = store.segments(sid)
    assert len(stored) == 12 and len(finals) == 12
    assert [line.split("] ", 1)[1] for line in finals] == [
        "Final number 0. Kubernetes ✎", *(f"Final number {n}." for n in range(1, 12))]
    assert [s.seq for s in stored] == list(range(1, 13))
    assert after_undo.endswith("Final number 0.")
    assert stored[0].text == "Final number 0." and all(s.edited_text is None for s in store.segments(sid))


def test_a_late_cleanup_keeps_the_correction_on_a_live_line(seeded):
    """The recorder reads a cleaned row, the person corrects that line, then the cleanup's
    message arrives: the line keeps showing the correction."""
    from dataclasses import replace

    from textual.app import App

    from notetaker.tui.widgets.live_transcript import LiveTranscript

    store = seeded.store
    seg = store.get_segment(seeded.seg["design0"])

    class One(App):
        def compose(self):
            yield LiveTranscript(id="transcript")

    async def scenario(pilot):
        transcript = pilot.app.query_one(LiveTranscript)
        transcript.add_final(seg)
        transcript.show_edited([replace(seg, edited_text="The onboarding flow needs a fifth screen.")])
        transcript.show_cleaned([replace(seg, clean_text="The new onboarding flow needs another screen.")])
        await pilot.pause()
        (shown,) = transcript.finals()
        assert shown.display_text == "The onboarding flow needs a fifth screen."
        assert shown.clean_text == "The new onboarding flow needs another screen."
        line = str(transcript.query(".final").first(Static).render())
        assert line.endswith("The onboarding flow needs a fifth screen. ✎")

    drive(One(), scenario)


def test_an_edit_the_store_refuses_is_one_notice_and_the_view_goes_on(app, seeded):
    """The line was deleted elsewhere while its dialog was open: one error notice, nothing
    written, the meeting view still works."""
    store = seeded.store

    async def scenario(pilot):
        screen = await open_meeting(pilot, app, seeded, "budget3")
        await pilot.press("c", *" Really.")
        store.delete_segment(seeded.seg["budget3"])
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        errors = [str(n.message) for n in app._notifications if n.severity == "error"]
        assert errors == [f"not saved: meeting {seeded.budget} has no segment #4; "
                          f"`notetaker show {seeded.budget}` lists them"]
        assert store.db.execute("SELECT COUNT(*) FROM segment_edits").fetchone()[0] == 0
        await pilot.press("u")
        await settle(pilot)
        assert any("nothing to undo" in str(n.message) for n in app._notifications)

    drive(app, scenario)
