"""Pilot tests of the meetings list, a meeting's screen, the dialogs, help and the command
palette: every key, checked against what the store holds afterwards."""

from __future__ import annotations

import io

from textual.widgets import DataTable, Input, Markdown, OptionList, Static

from notetaker.tui.app import key_sections, make_app
from notetaker.tui.dialogs import ConfirmDialog, MarkDialog, TextPrompt
from notetaker.tui.screens.help import HelpScreen, bindings_of
from notetaker.tui.screens.meeting import MeetingScreen
from notetaker.tui.screens.search import SearchScreen
from notetaker.tui.screens.sessions import EMPTY_TEXT, SessionsScreen
from notetaker.tui.screens.summary import SummaryScreen
from storage import SessionNotFound

from .conftest import drive, settle


def table(app) -> DataTable:
    return app.screen.query_one("#sessions", DataTable)


def row_ids(app) -> list[int]:
    return [int(k.value) for k in table(app).rows]


def text_of(widget) -> str:
    """What a Static shows, as plain text (Text, str or any Rich renderable)."""
    from rich.console import Console

    content = getattr(widget, "content", None)
    if isinstance(content, str):
        return content
    if hasattr(content, "plain"):
        return content.plain
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(content)
    return console.export_text()


# -- the list ---------------------------------------------------------------------------------


def test_lists_every_meeting_newest_first_with_interrupted_standing_out(app, seeded):
    async def scenario(pilot):
        assert isinstance(app.screen, SessionsScreen)
        assert row_ids(app) == [seeded.standup, seeded.design, seeded.budget]
        t = table(app)
        assert [str(c.label) for c in t.columns.values()] == ["ID", "Title", "Started", "Length", "Engine", "Status"]
        standup = [str(c) for c in t.get_row(str(seeded.standup))]
        assert standup == [str(seeded.standup), "Standup", "2025-03-05 08:15", "1:01", "voxtral/mini-realtime",
                           "complete"]
        status = t.get_row(str(seeded.design))[5]
        assert status.plain.strip() == "INTERRUPTED" and "red" in str(status.style)
        assert str(t.get_row(str(seeded.budget))[3]) == "12:34"
        assert not app.screen.query_one("#empty").display

    drive(app, scenario)


def test_empty_store_says_how_to_make_a_meeting(store, make_deps):
    app = make_app(make_deps(store))

    async def scenario(pilot):
        empty = app.screen.query_one("#empty", Static)
        assert empty.display and not table(app).display
        assert text_of(empty) == EMPTY_TEXT
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "quit" in shown and not {"open", "rename", "delete", "export", "summarize"} & shown
        await pilot.press("enter", "t", "d", "e", "s")  # nothing to act on: nothing happens
        assert isinstance(app.screen, SessionsScreen)

    drive(app, scenario)


def test_every_key_is_in_the_footer_with_a_description(app):
    async def scenario(pilot):
        active = app.screen.active_bindings
        for key in ("enter", "t", "d", "e", "s", "q", "slash", "question_mark"):
            assert key in active and active[key].binding.description, key

    drive(app, scenario)


# -- open -------------------------------------------------------------------------------------


def test_enter_opens_the_highlighted_meeting_and_escape_comes_back(app, seeded):
    async def scenario(pilot):
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MeetingScreen) and screen.session_id == seeded.budget
        info = text_of(screen.query_one("#meeting-info"))
        assert "Budget review" in info and "2025-03-03 09:00" in info and "12:34" in info and "complete" in info
        marks = text_of(screen.query_one("#marks"))
        assert "[00:00:15] Decision: travel budget stays flat" in marks
        assert "[00:00:17] Action: Sam: numbers by Friday" in marks
        transcript = screen.query_one("#transcript", OptionList)
        assert transcript.option_count == len(seeded.store.segments(seeded.budget)) + 2  # and the marks
        lines = [str(transcript.get_option_at_index(i).prompt) for i in range(3, 7)]
        # The marks between the finals at their moment (15 s, 17 s: after #4 at 15 s, before #5 at 20 s).
        assert lines[0].startswith("[#4 00:00:15] ") and lines[3].startswith("[#5 00:00:20] ")
        assert lines[1:3] == ["▸ [00:00:15] Decision: travel budget stays flat", "▸ [00:00:17] Action: Sam: numbers by Friday"]
        assert transcript.get_option_at_index(4).disabled  # the cursor passes over marks
        first = [str(transcript.get_option_at_index(i).prompt) for i in range(2)]
        # Each line starts with its number in the meeting (what summaries cite), not its database id.
        assert first[0] == "[#1 00:00:00] Good morning, let's go through the budget for the next quarter."
        assert first[1] == "[#2 00:00:05] Marketing asked for 12,000 more than last time."  # the cleaned text
        assert not screen.query_one("#summary-pane").display  # no summary yet
        await pilot.press("escape")
        assert isinstance(app.screen, SessionsScreen)

    drive(app, scenario)


def test_a_meeting_shows_its_latest_summary_with_citation_links(app, seeded):
    async def scenario(pilot):
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MeetingScreen) and screen.session_id == seeded.standup
        assert screen.query_one("#summary-pane").display
        md = screen.query_one("#meeting-summary", Markdown)
        assert "The export bug is fixed" in md.source
        assert "[#2](segment:2)" in md.source and seeded.num["standup1"] == 2  # its number, not its id
        # following a citation link highlights the cited segment in the transcript
        md.post_message(Markdown.LinkClicked(md, f"segment:{seeded.num['standup2']}"))
        await settle(pilot)
        assert screen.highlighted_segment_id == seeded.seg["standup2"]

    drive(app, scenario)


def test_meeting_opened_at_a_segment_scrolls_it_into_view(seeded, make_deps):
    app = make_app(make_deps(seeded.store))

    async def scenario(pilot):
        late = seeded.seg["late"]
        app.push_screen(MeetingScreen(app.deps, seeded.budget, focus_segment_id=late))
        await settle(pilot, 0.05)
        screen = app.screen
        transcript = screen.query_one("#transcript", OptionList)
        assert screen.highlighted_segment_id == late
        assert transcript.scroll_y > 0  # the last segment is far below the first screenful
        assert transcript.highlighted == transcript.option_count - 1

    drive(app, scenario)


def test_meeting_keys_rename_export_summarize(seeded, make_deps, rewrite, tmp_path):
    from .conftest import summary_reply

    rewrite.replies = [summary_reply(seeded)]
    app = make_app(make_deps(seeded.store))

    async def scenario(pilot):
        app.push_screen(MeetingScreen(app.deps, seeded.design))
        await settle(pilot)
        await pilot.press("t")
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("ctrl+u", *"Design review", "enter")
        await settle(pilot)
        assert seeded.store.get_session(seeded.design).title == "Design review"
        assert "Design review" in text_of(app.screen.query_one("#meeting-info"))
        assert "INTERRUPTED" in text_of(app.screen.query_one("#meeting-info"))

        await pilot.press("e")
        out = tmp_path / "exports" / f"{seeded.design}-Design-review.md"
        assert out.is_file() and "The new onboarding flow needs one more screen." in out.read_text()

        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SummaryScreen) and app.screen.session_id == seeded.design
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MeetingScreen)
        assert app.screen.query_one("#summary-pane").display  # the new summary is shown on return

    drive(app, scenario)


# -- rename, delete, export, summarize, quit -------------------------------------------------


def test_rename_saves_the_new_title(app, seeded):
    async def scenario(pilot):
        await pilot.press("t")
        prompt = app.screen
        assert isinstance(prompt, TextPrompt)
        assert prompt.query_one(Input).value == "Standup"
        await pilot.press("ctrl+u", *"Daily standup", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SessionsScreen)
        assert seeded.store.get_session(seeded.standup).title == "Daily standup"
        assert str(table(app).get_row(str(seeded.standup))[1]) == "Daily standup"

    drive(app, scenario)


def test_rename_cancelled_or_empty_changes_nothing(app, seeded):
    async def scenario(pilot):
        await pilot.press("t", "ctrl+u", *"Other", "escape")
        await pilot.press("t", "ctrl+u", "enter")
        await settle(pilot)
        assert seeded.store.get_session(seeded.standup).title == "Standup"

    drive(app, scenario)


def test_delete_asks_first_and_n_keeps_the_meeting(app, seeded):
    async def scenario(pilot):
        await pilot.press("d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "Standup" in text_of(dialog.query_one("#question"))
        await pilot.press("n")
        await pilot.press("d", "escape")
        await settle(pilot)
        assert seeded.store.get_session(seeded.standup).title == "Standup"
        assert row_ids(app) == [seeded.standup, seeded.design, seeded.budget]

    drive(app, scenario)


def test_delete_confirmed_removes_the_meeting_everywhere(app, seeded):
    async def scenario(pilot):
        await pilot.press("down", "d", "y")
        await settle(pilot)
        assert row_ids(app) == [seeded.standup, seeded.budget]
        try:
            seeded.store.segments(seeded.design)
        except SessionNotFound:
            pass
        else:
            raise AssertionError("the meeting is still in the store")
        assert not seeded.store.search("onboarding")
        assert table(app).cursor_row == 1  # the cursor stays where the meeting was

    drive(app, scenario)


def test_a_meeting_still_recording_cannot_be_deleted(store, make_deps):
    sid = store.create_session("Live one", "whisper", "tiny.en", started_at="2025-03-06T10:00:00Z")
    app = make_app(make_deps(store))

    async def scenario(pilot):
        assert "recording" in str(table(app).get_row(str(sid))[5])
        await pilot.press("d")
        assert isinstance(app.screen, SessionsScreen)
        assert store.get_session(sid).status == "recording"

    drive(app, scenario)


def test_export_writes_markdown_and_says_where(app, seeded, tmp_path):
    async def scenario(pilot):
        await pilot.press("e")
        out = tmp_path / "exports" / f"{seeded.standup}-Standup.md"
        text = out.read_text(encoding="utf-8")
        assert text.startswith("---\ntitle: ")
        assert "## Summary" in text and "Yesterday I fixed the export bug." in text
        assert any(str(out) in n.message for n in app._notifications)

    drive(app, scenario)


def test_export_failure_is_one_line(seeded, make_deps, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    app = make_app(make_deps(seeded.store, export_dir=blocker))

    async def scenario(pilot):
        await pilot.press("e")
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and "cannot export" in errors[0] and "\n" not in errors[0]

    drive(app, scenario)


def test_s_opens_the_summary_of_the_highlighted_meeting(app, seeded):
    async def scenario(pilot):
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SummaryScreen) and app.screen.session_id == seeded.standup
        await pilot.press("escape")
        assert isinstance(app.screen, SessionsScreen)

    drive(app, scenario)


def test_q_quits(app):
    async def scenario(pilot):
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0

    drive(app, scenario)


def test_the_list_follows_the_store_when_coming_back(app, seeded):
    async def scenario(pilot):
        await pilot.press("slash")
        seeded.store.rename_session(seeded.budget, "Renamed elsewhere")
        await pilot.press("escape")
        await settle(pilot)
        assert str(table(app).get_row(str(seeded.budget))[1]) == "Renamed elsewhere"

    drive(app, scenario)


# -- app keys, help, command palette -----------------------------------------------------------


def test_slash_opens_search_and_question_mark_opens_help(app):
    async def scenario(pilot):
        await pilot.press("slash")
        assert isinstance(app.screen, SearchScreen)
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, SessionsScreen)
        for key in ("q", "question_mark"):
            await pilot.press("question_mark", key)
            assert isinstance(app.screen, SessionsScreen)

    drive(app, scenario)


def test_help_lists_every_key_of_every_screen(app):
    async def scenario(pilot):
        await pilot.press("question_mark")
        shown = text_of(app.screen.query_one("#keys"))
        for heading, owner in key_sections():
            assert heading in shown
            for b in bindings_of(owner):
                assert b.description in shown, (heading, b.key)
        for heading in ("Meetings", "Live meeting", "Meeting", "Search", "Summary", "Mark"):
            assert heading in shown
        assert "ctrl+p" in shown

    drive(app, scenario)


def test_every_binding_has_a_description():
    for _, owner in key_sections():
        for b in bindings_of(owner):
            assert b.description, (owner.__name__, b.key)


def test_command_palette_runs_a_screen_key_by_name(app, seeded):
    async def scenario(pilot):
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"rename")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot, 0.05)
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("ctrl+u", *"From the palette", "enter")
        await settle(pilot)
        assert seeded.store.get_session(seeded.standup).title == "From the palette"

    drive(app, scenario)


def test_command_palette_offers_every_key_of_the_screen(app):
    from notetaker.tui.palette import KeyCommands

    async def scenario(pilot):
        provider = KeyCommands(app.screen)
        names = [hit.display for hit in [h async for h in provider.discover()]]
        for name in ("Open", "Rename", "Delete", "Export", "Summarize", "Quit", "Search", "Help"):
            assert name in names

    drive(app, scenario)


# -- dialogs ------------------------------------------------------------------------------------


def _dialog_result(app, dialog, keys):
    results: list = []

    async def scenario(pilot):
        app.push_screen(dialog, results.append)
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()

    drive(app, scenario)
    return results


def test_confirm_dialog_answers(app):
    assert _dialog_result(app, ConfirmDialog("Sure?"), ["y"]) == [True]


def test_confirm_dialog_n_and_escape_say_no(seeded, make_deps):
    for key in ("n", "escape"):
        app = make_app(make_deps(seeded.store))
        assert _dialog_result(app, ConfirmDialog("Sure?"), [key]) == [False]


def test_text_prompt_returns_text_or_none(seeded, make_deps):
    app = make_app(make_deps(seeded.store))
    assert _dialog_result(app, TextPrompt("Name", "old"), ["ctrl+u", *" new name ", "enter"]) == ["new name"]
    app = make_app(make_deps(seeded.store))
    assert _dialog_result(app, TextPrompt("Name", "old"), ["escape"]) == [None]


def test_mark_dialog_letter_keys_pick_the_kind_then_text(seeded, make_deps):
    cases = {"a": "action", "d": "decision", "q": "question", "n": "note"}
    for key, kind in cases.items():
        app = make_app(make_deps(seeded.store))
        # after the kind, letters are text: "dan" types into the text field
        assert _dialog_result(app, MarkDialog(), [key, *"dan q", "enter"]) == [(kind, "dan q")]


def test_mark_dialog_arrows_enter_and_empty_text(seeded, make_deps):
    app = make_app(make_deps(seeded.store))
    assert _dialog_result(app, MarkDialog(), ["down", "down", "enter", "enter"]) == [("question", "")]


def test_mark_dialog_escape_cancels(seeded, make_deps):
    app = make_app(make_deps(seeded.store))
    assert _dialog_result(app, MarkDialog(), ["a", *"x", "escape"]) == [None]


def test_clicking_a_row_opens_that_meeting(app, seeded):
    async def scenario(pilot):
        await pilot.click("#sessions", offset=(4, 2))  # the header, then the rows: a click highlights
        assert isinstance(app.screen, SessionsScreen) and table(app).cursor_row == 1
        await pilot.click("#sessions", offset=(4, 2))  # and a click on the highlighted row opens it
        await settle(pilot)
        assert isinstance(app.screen, MeetingScreen) and app.screen.session_id == seeded.design

    drive(app, scenario)


def test_start_offers_recovery_and_R_recovers_into_the_same_meeting(tmp_path, make_deps):
    """An interrupted meeting with spooled audio past its last final: the meetings screen
    says so on start, and R transcribes the rest into it (scripted engine), off the UI thread."""
    from storage import SessionStore
    from tests.app.scripted import ScriptedEngine, final
    from tests.app.spooled import interrupted_meeting, speech_clip

    store = SessionStore.open(tmp_path / "rec" / "notetaker.db")
    audio, _ = speech_clip(["es01", "es02", "es03"])
    sessions = tmp_path / "rec" / "sessions"
    sid = interrupted_meeting(store, sessions, audio, [("First sentence.", 0.0, 2.0)], engine=("scripted", "v1"))
    script = [final(1.5, "Later words.", start=0.5)]  # times within the audio recovery feeds it
    deps = make_deps(store, spool_dir=sessions, engine_loader=lambda name, model: ScriptedEngine(script))
    app = make_app(deps)
    notes: list[str] = []

    async def scenario(pilot):
        await settle(pilot, 0.1)
        notes.extend(n.message for n in app._notifications)
        await pilot.press("R")
        await settle(pilot, 0.5)

    drive(app, scenario)
    assert any("press R to recover" in n for n in notes)
    s = store.get_session(sid)
    segs = store.segments(sid)
    store.close()
    assert s.status == "complete" and [seg.text for seg in segs] == ["First sentence.", "Later words."]
    assert segs[1].start_s >= 1.7  # on the meeting's timeline, after the last saved final
