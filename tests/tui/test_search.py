"""Pilot tests of the search screen: results as you type, grouped by meeting, highlighted
snippets, one-line errors, opening a hit at its segment, and `/` back to the search box."""

from __future__ import annotations

from textual.widgets import Input, OptionList, Static

from notetaker.tui.app import make_app
from notetaker.tui.messages import SearchAnswered
from notetaker.tui.screens.meeting import MeetingScreen
from notetaker.tui.screens.search import CLOSE, DEBOUNCE_S, HINT, OPEN, SearchScreen, snippet_text
from notetaker.tui.screens.sessions import SessionsScreen

from .conftest import drive, settle


async def search_for(pilot, query: str) -> SearchScreen:
    if not isinstance(pilot.app.screen, SearchScreen):
        await pilot.press("slash")
    await pilot.press(*query)
    await settle(pilot, DEBOUNCE_S + 0.1)
    return pilot.app.screen


def hits(screen) -> list:
    """The hits shown, in order (the meeting rows left out)."""
    return [r.hit for r in screen.results if r.hit is not None]


def status(screen) -> str:
    content = screen.query_one("#search-status", Static).content
    return content if isinstance(content, str) else content.plain


def counting_searches(store) -> list[str]:
    """Record every query that reaches the store."""
    calls: list[str] = []
    original = store.search_meetings

    def search(query, *args, **kwargs):
        calls.append(query)
        return original(query, *args, **kwargs)

    store.search_meetings = search
    return calls


def test_results_appear_as_you_type_with_the_words_highlighted(app, seeded):
    calls = counting_searches(seeded.store)

    async def scenario(pilot):
        screen = await search_for(pilot, "budget")
        assert calls and calls[-1] == "budget"
        assert len(calls) < len("budget")  # typing pauses the search until the typing pauses
        assert {h.segment_id for h in hits(screen)} == {seeded.seg["budget0"], seeded.seg["budget2"],
                                                         seeded.seg["design1"]}
        assert status(screen) == "3 matches in 2 meetings"
        options = screen.query_one("#hits", OptionList)
        assert options.option_count == 5  # each meeting's row, then its hits
        # Grouped: a meeting's row, then its hits; the title's own match ranks it first.
        assert [(r.meeting.session_id, r.hit is None) for r in screen.results] == [
            (seeded.budget, True), (seeded.budget, False), (seeded.budget, False),
            (seeded.design, True), (seeded.design, False)]
        for i, result in enumerate(screen.results):
            prompt = options.get_option_at_index(i).prompt
            marked = [prompt.plain[s.start:s.end] for s in prompt.spans if "reverse" in str(s.style)]
            if result.hit is None:
                assert prompt.plain.startswith(result.meeting.title.replace(OPEN, "").replace(CLOSE, ""))
                started = "2025-03-03 09:00" if result.meeting.session_id == seeded.budget else "2025-03-04 14:30"
                assert started in prompt.plain
                assert marked == (["Budget"] if result.meeting.session_id == seeded.budget else [])
            else:
                assert f"[#{result.hit.seq} " in prompt.plain and marked == ["budget"]

        # more typing narrows the results: both words in one meeting, the segment with both first
        await pilot.press(*" travel")
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert [h.segment_id for h in hits(screen)] == [seeded.seg["budget2"], seeded.seg["budget0"]]
        assert status(screen) == "2 matches in 1 meeting"

    drive(app, scenario)


def test_the_last_word_is_a_prefix_as_you_type(app, seeded):
    async def scenario(pilot):
        screen = await search_for(pilot, "lakesi")
        assert [h.segment_id for h in hits(screen)] == [seeded.seg["late"]]
        # Words from different segments of one meeting find it; a left-out word drops it.
        await pilot.press("ctrl+u", *"lakeside marketing")
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert {h.segment_id for h in hits(screen)} == {seeded.seg["late"], seeded.seg["budget1"]}
        await pilot.press("ctrl+u", *"onboarding -lakeside")
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert [r.meeting.session_id for r in screen.results if r.hit is None] == [seeded.design]

    drive(app, scenario)


def test_slash_goes_back_to_the_search_box_after_a_meeting(app, seeded):
    async def scenario(pilot):
        screen = await search_for(pilot, "lakeside")
        await pilot.press("down", "down", "enter")  # into the results, the hit, open it
        await settle(pilot, 0.05)
        assert isinstance(app.screen, MeetingScreen)
        await pilot.press("escape")
        await settle(pilot, 0.05)
        assert app.screen is screen and screen.query_one("#hits", OptionList).has_focus
        await pilot.press("slash")
        box = screen.query_one(Input)
        assert box.has_focus and box.value == "lakeside" and box.selection.end - box.selection.start == 8
        await pilot.press(*"venue")  # typing goes to the box (replacing the selected query) and searches
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert box.value == "venue" and screen.query_text == "venue"
        assert [h.segment_id for h in hits(screen)] == [seeded.seg["late"]]
        await pilot.press("end", *" hotel")
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert screen.query_text == "venue hotel" and len(hits(screen)) == 1
        assert sum(isinstance(s, SearchScreen) for s in app.screen_stack) == 1

    drive(app, scenario)


def test_snippet_markers_become_highlights():
    text = snippet_text("we \ue000agreed\ue001 on the \ue000budget\ue001 [really]")
    assert text.plain == "we agreed on the budget [really]"
    assert [text.plain[s.start:s.end] for s in text.spans] == ["agreed", "budget"]


def test_a_query_the_index_cannot_take_is_one_line_never_a_crash(app):
    async def scenario(pilot):
        screen = await search_for(pilot, '"unbalanced')
        assert status(screen) == "no matches" and screen.error is None

        await pilot.press("ctrl+u", *"a* b* c* d* e*")
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert screen.error is not None and "prefix" in screen.error and "\n" not in screen.error
        assert status(screen) == screen.error
        assert screen.query_one("#search-status").has_class("error")
        assert screen.query_one("#hits", OptionList).option_count == 0

        await pilot.press("ctrl+u")
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert status(screen) == HINT and screen.error is None
        assert not screen.query_one("#search-status").has_class("error")

    drive(app, scenario)


def test_enter_opens_the_hit_scrolled_to_its_segment(app, seeded):
    async def scenario(pilot):
        screen = await search_for(pilot, "lakeside")
        assert [h.segment_id for h in hits(screen)] == [seeded.seg["late"]]
        await pilot.press("enter")  # the meeting's row: opened at its best hit
        await settle(pilot, 0.05)
        meeting = app.screen
        assert isinstance(meeting, MeetingScreen) and meeting.session_id == seeded.budget
        assert meeting.highlighted_segment_id == seeded.seg["late"]
        transcript = meeting.query_one("#transcript", OptionList)
        assert transcript.scroll_y > 0
        await pilot.press("escape")
        assert app.screen is screen and screen.query_one(Input).value == "lakeside"

    drive(app, scenario)


def test_down_moves_into_the_results_and_enter_opens_the_highlighted_one(app, seeded):
    async def scenario(pilot):
        screen = await search_for(pilot, "budget")
        await pilot.press("down")
        options = screen.query_one("#hits", OptionList)
        assert options.has_focus and options.highlighted == 0
        await pilot.press("down", "down", "enter")  # the budget meeting's second hit
        await settle(pilot, 0.05)
        third = screen.results[2].hit
        assert third is not None and third.segment_id != screen.results[1].hit.segment_id
        assert isinstance(app.screen, MeetingScreen)
        assert app.screen.session_id == third.session_id
        assert app.screen.highlighted_segment_id == third.segment_id

    drive(app, scenario)


def test_enter_with_no_results_does_nothing_and_escape_goes_back(app):
    async def scenario(pilot):
        screen = await search_for(pilot, "zebra")
        assert status(screen) == "no matches"
        await pilot.press("enter", "down")
        assert app.screen is screen
        await pilot.press("escape")
        assert isinstance(app.screen, SessionsScreen)

    drive(app, scenario)


def test_slash_in_the_search_box_is_text_not_a_second_search(app):
    async def scenario(pilot):
        screen = await search_for(pilot, "a/b")
        assert app.screen is screen and screen.query_one(Input).value == "a/b"
        assert sum(isinstance(s, SearchScreen) for s in app.screen_stack) == 1

    drive(app, scenario)


def test_an_answer_to_an_older_query_is_not_shown(app, seeded):
    async def scenario(pilot):
        screen = await search_for(pilot, "lakeside")
        stale = SearchAnswered("budget", [], "stale error")
        screen.post_message(stale)
        await settle(pilot)
        assert screen.error is None and len(hits(screen)) == 1

    drive(app, scenario)


def test_search_finds_segments_added_while_the_screen_is_open(seeded, make_deps):
    app = make_app(make_deps(seeded.store))

    async def scenario(pilot):
        screen = await search_for(pilot, "giraffe")
        assert not screen.results
        seg = seeded.store.add_segment(seeded.standup, "A giraffe walked into the standup.", 7.0, 9.0)
        await pilot.press("ctrl+u", *"giraffe")
        await settle(pilot, DEBOUNCE_S + 0.1)
        assert [h.segment_id for h in hits(screen)] == [seg.id]

    drive(app, scenario)
