"""Pilot tests of the summary screen: the stored summary first, a new one streamed from a
scripted backend off the UI thread and stored, errors as one line, citations that jump."""

from __future__ import annotations

import threading
import time

from textual.widgets import Markdown, OptionList, Static

from notetaker.tui.app import make_app
from notetaker.tui.screens.live import LiveScreen
from notetaker.tui.screens.meeting import MeetingScreen
from notetaker.tui.display import linkify_citations, segment_from_href
from notetaker.tui.messages import SummaryDone, SummaryFailed, SummaryStreamed
from notetaker.tui.screens.summary import SummaryScreen
from rewrite.base import RewriteError
from tests.rewrite.scripted_backend import ScriptedBackend

from .conftest import Seeded, drive, settle, summary_reply


def info(screen) -> str:
    content = screen.query_one("#summary-info", Static).content
    return content if isinstance(content, str) else content.plain


def source(screen) -> str:
    return screen.query_one("#summary", Markdown).source


def citation_ids(screen) -> list[int]:
    options = screen.query_one("#citations", OptionList)
    return [int(options.get_option_at_index(i).id) for i in range(options.option_count)]


def citation_lines(screen) -> list[str]:
    options = screen.query_one("#citations", OptionList)
    return [options.get_option_at_index(i).prompt.plain for i in range(options.option_count)]


def open_summary(app, session_id: int, backend_name: str | None = None) -> SummaryScreen:
    screen = SummaryScreen(app.deps, session_id, backend_name)
    app.push_screen(screen)
    return screen


# -- the stored summary ----------------------------------------------------------------------


def test_the_stored_summary_shows_first_without_loading_a_model(app, seeded, rewrite):
    async def scenario(pilot):
        screen = open_summary(app, seeded.standup)
        await settle(pilot)
        assert rewrite.asked == []
        assert info(screen).startswith("saved 2025-03-05 08:20 · scripted/scripted-1")
        s, n = seeded.seg, seeded.num
        assert (n["standup0"], n["standup1"], n["standup2"]) == (1, 2, 3)  # numbers in the meeting, not ids
        assert s["standup0"] > 40
        assert "[#1](segment:1)" in source(screen)
        assert "The export bug is fixed" in source(screen)
        assert citation_ids(screen) == [s["standup0"], s["standup1"], s["standup2"]]  # they jump to these
        assert citation_lines(screen)[0].startswith("#1 [00:00:00] Yesterday I fixed")
        assert screen.sub_title == "Summary · Standup"

    drive(app, scenario)


# -- writing a new one ------------------------------------------------------------------------


def test_a_new_summary_is_written_off_the_ui_thread_and_stored(app, seeded: Seeded, rewrite):
    threads: list[int] = []

    def reply(messages, max_tokens):
        threads.append(threading.get_ident())
        return summary_reply(seeded)

    rewrite.replies = reply
    ui_thread = threading.get_ident()

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget)
        await settle(pilot)
        assert rewrite.asked == ["mlx"]  # the configured backend
        assert threads and ui_thread not in threads
        stored = seeded.store.summaries(seeded.budget)
        assert len(stored) == 1
        record = stored[0]
        assert (record.backend, record.model) == ("scripted", "scripted-1")
        assert screen.text == record.markdown and "[#99999]" not in record.markdown
        s, n = seeded.seg, seeded.num
        assert [c.seqs for c in record.citations] == [(n["budget2"],), (n["budget3"], n["budget1"]), (n["late"],)]
        assert n["late"] == 45
        assert source(screen) == linkify_citations(record.markdown)
        assert citation_ids(screen) == [s["budget2"], s["budget3"], s["budget1"], s["late"]]
        assert info(screen) == ("saved · scripted/scripted-1 · "
                                "removed 1 citation(s) to segments that do not exist")
        assert any("saved" in n.message for n in app._notifications)
        assert rewrite.made[0].closed  # the screen closes the backend it asked for

    drive(app, scenario)


class GatedBackend(ScriptedBackend):
    """Streams the first pieces, then waits for the test to open the gate."""

    gate = threading.Event()
    first = 4

    def complete(self, messages, max_tokens, temperature=0.0):
        pieces = list(super().complete(messages, max_tokens, temperature))
        for i, piece in enumerate(pieces):
            if i == self.first:
                assert self.gate.wait(10)
            yield piece


def test_the_summary_streams_in_as_it_is_written(app, seeded, rewrite):
    rewrite.replies = [summary_reply(seeded)]
    rewrite.backend_class = GatedBackend
    GatedBackend.gate.clear()

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget)
        await pilot.pause()
        deadline = time.monotonic() + 10
        while "Travel" not in source(screen) and time.monotonic() < deadline:
            await pilot.pause(0.02)
        assert screen.running
        assert source(screen).startswith("## Decisions") and "Action items" not in source(screen)
        assert seeded.store.summaries(seeded.budget) == []  # nothing is stored half-written
        await pilot.press("r")  # a second summary waits for this one
        assert any("still being written" in n.message for n in app._notifications)
        GatedBackend.gate.set()
        await settle(pilot)
        assert not screen.running and "Action items" in source(screen)
        assert len(seeded.store.summaries(seeded.budget)) == 1
        assert len(rewrite.made) == 1

    drive(app, scenario)


def test_stream_messages_collapse():
    old, new = SummaryStreamed("a"), SummaryStreamed("ab")
    assert new.can_replace(old)
    assert not SummaryDone.can_replace(SummaryFailed("x"), old)


def test_r_and_s_write_a_new_summary_over_the_stored_one(app, seeded, rewrite):
    rewrite.replies = [f"## Progress\n\n- Export fixed [#{seeded.num['standup0']}]\n",
                       f"## Progress\n\n- Search pairing [#{seeded.num['standup1']}]\n"]

    async def scenario(pilot):
        screen = open_summary(app, seeded.standup)
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert "Export fixed" in source(screen) and "bug is fixed" not in source(screen)
        await pilot.press("s")
        await settle(pilot)
        assert "Search pairing" in source(screen)
        stored = seeded.store.summaries(seeded.standup)
        assert len(stored) == 3 and stored[-1].markdown == screen.text
        assert citation_ids(screen) == [seeded.seg["standup1"]]
        assert rewrite.asked == ["mlx", "mlx"]

    drive(app, scenario)


def test_the_backend_is_the_one_asked_for_or_configured(seeded, make_deps, rewrite):
    rewrite.replies = lambda messages, max_tokens: summary_reply(seeded)
    app = make_app(make_deps(seeded.store, rewrite_backend="openai"))

    async def scenario(pilot):
        open_summary(app, seeded.budget)
        await settle(pilot)
        await pilot.press("escape")
        open_summary(app, seeded.design, "voxtral")
        await settle(pilot)
        assert rewrite.asked == ["openai", "voxtral"]

    drive(app, scenario)


# -- errors -------------------------------------------------------------------------------------


def assert_failed(app, screen, words: str) -> None:
    assert screen.error is not None and words in screen.error and "\n" not in screen.error
    assert info(screen) == f"no summary: {screen.error}"
    assert screen.query_one("#summary-info").has_class("error")
    assert any(n.severity == "error" and words in n.message for n in app._notifications)
    assert not screen.running


def test_a_backend_that_cannot_load_is_one_line_and_the_stored_summary_stays(app, seeded, rewrite):
    rewrite.fail = RewriteError("cannot reach http://127.0.0.1:8080: connection refused")

    async def scenario(pilot):
        screen = open_summary(app, seeded.standup)
        await settle(pilot)
        before = source(screen)
        await pilot.press("r")
        await settle(pilot)
        assert_failed(app, screen, "connection refused")
        assert source(screen) == before
        assert len(seeded.store.summaries(seeded.standup)) == 1

    drive(app, scenario)


def test_a_failure_midway_keeps_what_was_saved(app, seeded, rewrite):
    rewrite.replies = []  # the scripted model has nothing to say: RewriteError from complete()

    async def scenario(pilot):
        screen = open_summary(app, seeded.standup)
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert_failed(app, screen, "no reply left")
        assert "The export bug is fixed" in source(screen)
        assert len(seeded.store.summaries(seeded.standup)) == 1
        assert rewrite.made[0].closed

    drive(app, scenario)


def test_an_unexpected_model_error_is_one_line_too(app, seeded, rewrite):
    def boom(messages, max_tokens):
        raise MemoryError("out of memory\nwith a second line")

    rewrite.replies = boom

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget)
        await settle(pilot)
        assert screen.error.startswith("MemoryError: out of memory")
        assert seeded.store.summaries(seeded.budget) == []

    drive(app, scenario)


def test_no_backend_and_an_empty_transcript_are_explained(seeded, make_deps, rewrite):
    empty = seeded.store.create_session("Silent", "whisper", "tiny.en", started_at="2025-03-06T10:00:00Z")
    seeded.store.finish_session(empty, "complete", duration_s=3.0)
    rewrite.replies = ["never used"]
    app = make_app(make_deps(seeded.store))

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget, "none")
        await settle(pilot)
        assert_failed(app, screen, "no rewrite backend named 'none'")
        await pilot.press("escape")
        screen = open_summary(app, empty)
        await settle(pilot)
        assert_failed(app, screen, "has no transcript to summarize")
        assert seeded.store.summaries(empty) == []
        assert rewrite.asked == ["none"]  # no model is loaded for a meeting with nothing to summarize

    drive(app, scenario)


# -- citations -------------------------------------------------------------------------------------


def test_linkify_citations():
    assert linkify_citations("- a [#12]\n- b [#3, #4-#6]; c [note](x)") == (
        "- a \\[[#12](segment:12)\\]\n"
        "- b \\[[#3](segment:3), [#4](segment:4)-[#6](segment:6)\\]; c [note](x)")
    assert linkify_citations("no [citations] here [#x]") == "no [citations] here [#x]"
    assert segment_from_href("segment:12") == 12
    assert segment_from_href("https://example.com") is None


def test_c_and_enter_open_the_cited_segment(app, seeded):
    async def scenario(pilot):
        screen = open_summary(app, seeded.standup)
        await settle(pilot)
        await pilot.press("c")
        assert screen.query_one("#citations", OptionList).has_focus
        await pilot.press("down", "enter")
        await settle(pilot, 0.05)
        meeting = app.screen
        assert isinstance(meeting, MeetingScreen) and meeting.session_id == seeded.standup
        assert meeting.highlighted_segment_id == seeded.seg["standup1"]
        await pilot.press("escape")
        assert app.screen is screen

    drive(app, scenario)


def test_a_clicked_citation_link_opens_the_segment(app, seeded):
    async def scenario(pilot):
        screen = open_summary(app, seeded.standup)
        await settle(pilot)
        md = screen.query_one("#summary", Markdown)
        md.post_message(Markdown.LinkClicked(md, f"segment:{seeded.num['standup2']}"))
        await settle(pilot, 0.05)
        assert isinstance(app.screen, MeetingScreen)
        assert app.screen.highlighted_segment_id == seeded.seg["standup2"]

    drive(app, scenario)


class QuietLive(LiveScreen):
    """The live view with no recorder behind it: only where a citation should land."""

    def _record(self) -> None:
        pass

    def scroll_to_segment(self, segment_id: int) -> bool:
        self.scrolled_to = segment_id
        return True


def test_a_citation_in_the_live_meetings_summary_goes_back_to_the_live_view(app, seeded):
    async def scenario(pilot):
        live = QuietLive(app.deps)
        app.push_screen(live)
        await pilot.pause()
        live.session_id = seeded.standup
        open_summary(app, seeded.standup)
        await settle(pilot)
        await pilot.press("c", "enter")
        await settle(pilot)
        assert app.screen is live and live.scrolled_to == seeded.seg["standup0"]

    drive(app, scenario)


def test_c_with_no_citations_says_so(app, seeded, rewrite):
    rewrite.replies = ["## Notes\n\n- Nothing to cite here.\n"]

    async def scenario(pilot):
        screen = open_summary(app, seeded.design)
        await settle(pilot)
        assert not screen.query_one("#citations").display
        await pilot.press("c")
        assert any("cites no segments" in n.message for n in app._notifications)

    drive(app, scenario)


def test_leaving_while_it_is_written_still_stores_it_and_says_so(app, seeded, rewrite):
    rewrite.replies = [summary_reply(seeded)]
    rewrite.backend_class = GatedBackend
    GatedBackend.gate.clear()

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget)
        await pilot.pause()
        await pilot.press("escape")
        assert app.screen is not screen
        GatedBackend.gate.set()
        await settle(pilot)
        assert len(seeded.store.summaries(seeded.budget)) == 1
        assert any(n.message == f"summary of meeting {seeded.budget} saved" for n in app._notifications)

    drive(app, scenario)


def test_the_users_default_template_is_used(seeded, make_deps, rewrite, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "default.md").write_text("## Budget questions for {title}\n\n- ...\n", encoding="utf-8")
    prompts: list[str] = []

    def reply(messages, max_tokens):
        prompts.append("\n".join(m.content for m in messages))
        return "## Budget questions for Budget review\n\n- None open\n"

    rewrite.replies = reply
    app = make_app(make_deps(seeded.store, templates_dir=templates))

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget)
        await settle(pilot)
        assert "## Budget questions for Budget review" in prompts[0]
        assert screen.text.startswith("## Budget questions for Budget review")

    drive(app, scenario)


# -- nothing set up: what is available is offered -------------------------------------------------


def test_with_no_backend_set_up_the_screen_says_so_and_offers_what_is_available(seeded, make_deps, rewrite):
    from notetaker.prepare import RewriteChoice

    rewrite.replies = lambda messages, max_tokens: summary_reply(seeded)
    offered = [RewriteChoice("smollm2 (on this machine)", "mlx", "smollm2"),
               RewriteChoice("llama3.2:1b on Ollama at http://127.0.0.1:11434/v1", "openai", "llama3.2:1b",
                             "http://127.0.0.1:11434/v1")]
    loaded = []

    def load(choice):
        loaded.append(choice)
        return rewrite(choice.backend)

    app = make_app(make_deps(seeded.store, rewrite_backend="none", rewrite_choices=lambda: offered,
                             rewrite_choice_factory=load))

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget)
        await settle(pilot)
        assert rewrite.asked == [] and screen.error is not None
        assert info(screen).startswith("no summary: no rewrite model is set up") and "pick one" in info(screen)
        backends = screen.query_one("#backends", OptionList)
        assert backends.display and [backends.get_option_at_index(i).prompt for i in range(2)] == [
            offered[0].label, offered[1].label]
        await pilot.press("down", "enter")  # the server's model
        await settle(pilot)
        assert loaded == [offered[1]] and rewrite.asked == ["openai"]
        assert not backends.display and screen.error is None
        assert seeded.store.summaries(seeded.budget)[-1].markdown == screen.text

    drive(app, scenario)


def test_with_no_backend_and_nothing_available_it_says_how_to_set_one_up(seeded, make_deps, rewrite):
    app = make_app(make_deps(seeded.store, rewrite_backend="none"))

    async def scenario(pilot):
        screen = open_summary(app, seeded.budget)
        await settle(pilot)
        assert rewrite.asked == []
        assert "models pull" in info(screen) and "models add" in info(screen) and "pick" not in info(screen)
        assert not screen.query_one("#backends", OptionList).display

    drive(app, scenario)
