"""Full-text search across every meeting as you type: meetings that contain every word, each
with its best hits under it. A hit opens its meeting at that segment (a hit in the person's
own notes opens the meeting); a meeting's row opens it at its best hit. `/` always goes back to
the search box, also after coming back from a meeting.

Queries run on a worker thread (a broad prefix* can take a moment on a large store) after a
short pause in typing; only the answer to the newest query is shown.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from notetaker.inert import inert
from notetaker.tui.deps import AppDeps
from notetaker.tui.messages import OpenMeeting, SearchAnswered, SearchResult
from notetaker.tui.palette import KeyCommands
from storage import MeetingHits, StoreError
from storage.export import clock

DEBOUNCE_S = 0.15
LIMIT = 20  # meetings, each with up to 3 hits
# Private-use characters mark the matched words: they never occur in speech, and unlike
# markup they need no escaping of the transcript text around them.
OPEN, CLOSE = "\ue000", "\ue001"
HINT = 'Type to search every meeting: words, "a phrase", -word, a OR b, speaker:NAME, channel:mic.'


def snippet_text(snippet: str, style: str = "bold reverse") -> Text:
    """The store's snippet with its marked words highlighted."""
    text = Text()
    rest = snippet
    while OPEN in rest:
        before, _, after = rest.partition(OPEN)
        word, _, rest = after.partition(CLOSE)
        text.append(before)
        text.append(word, style=style)
    text.append(rest)
    return text


def hit_text(result: SearchResult) -> Text:
    """A meeting's row (its title, matched words highlighted, and start) or a hit under it."""
    hit = result.hit
    if hit is None:
        line = snippet_text(inert(result.meeting.title or "Untitled"), style="bold reverse")
        line.stylize("bold")
        line.append(f"  {result.started}", style="dim")
        return line
    where = f"[note {clock(hit.start_s)}]" if hit.is_note else f"[#{hit.seq} {clock(hit.start_s)}]"
    line = Text(f"  {where} ", style="dim")
    line.append_text(snippet_text(inert(" ".join(hit.snippet.split()))))
    return line


def result_rows(meetings: list[MeetingHits], started: dict[int, str]) -> list[SearchResult]:
    """Each meeting's row, then its hits."""
    return [row for m in meetings for row in [SearchResult(m, started[m.session_id])]
            + [SearchResult(m, started[m.session_id], h) for h in m.hits]]


class SearchScreen(Screen):
    COMMANDS: ClassVar[set] = {KeyCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open hit", priority=True),
        Binding("down", "results", "Results", show=False),
        Binding("slash", "focus_query", "Search box", show=False),  # typed in the box, it is text
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, deps: AppDeps, query: str = "") -> None:
        super().__init__()
        self.deps = deps
        self.initial_query = query
        self.sub_title = "Search"
        self.query_text = ""  # the query the shown results answer
        self.results: list[SearchResult] = []
        self.error: str | None = None
        self._timer: Timer | None = None
        self._asked = ""  # the newest query sent to the worker

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(self.initial_query, placeholder="search all meetings", id="query")
        yield Static(HINT, id="search-status")
        yield OptionList(id="hits")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()
        if self.initial_query:
            self._ask(self.initial_query)

    # -- typing ------------------------------------------------------------------------------
    @on(Input.Changed, "#query")
    def _changed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        value = event.value
        self._timer = self.set_timer(DEBOUNCE_S, lambda: self._ask(value))

    @on(Input.Submitted, "#query")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_open()

    def _ask(self, query: str) -> None:
        self._timer = None
        self._asked = query
        if not query.strip():
            self._show(SearchAnswered(query, [], None))
            return
        self._search(query)

    @work(thread=True, exclusive=True, group="search")
    def _search(self, query: str) -> None:
        try:
            meetings = self.deps.store.search_meetings(query, limit=LIMIT, highlight=(OPEN, CLOSE))
            started = {m.session_id: m.started_at.astimezone().strftime("%Y-%m-%d %H:%M") for m in meetings}
            self.post_message(SearchAnswered(query, result_rows(meetings, started), None))
        except StoreError as e:  # a query that cannot be searched: one line, never a traceback
            self.post_message(SearchAnswered(query, [], str(e)))

    @on(SearchAnswered)
    def _answered(self, m: SearchAnswered) -> None:
        if m.query == self._asked:  # an answer to an older query is stale
            self._show(m)

    def _show(self, m: SearchAnswered) -> None:
        self.query_text, self.results, self.error = m.query, m.results, m.error
        hits = self.query_one("#hits", OptionList)
        hits.clear_options()
        hits.add_options(Option(hit_text(r), id=str(i)) for i, r in enumerate(m.results))
        if m.results:
            hits.highlighted = 0
        status = self.query_one("#search-status", Static)
        status.set_class(m.error is not None, "error")
        if m.error is not None:
            status.update(Text(m.error))
        elif not m.query.strip():
            status.update(HINT)
        elif not m.results:
            status.update("no matches")
        else:
            meetings = [r.meeting for r in m.results if r.hit is None]
            matches = sum(max(1, len(mh.hits)) for mh in meetings)
            more = "+" if len(meetings) >= LIMIT else ""
            status.update(f"{matches} match{'es' if matches != 1 else ''} "
                          f"in {len(meetings)}{more} meeting{'s' if len(meetings) != 1 else ''}")

    # -- keys ----------------------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#hits")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.open_result(event.option_index)

    def action_open(self) -> None:
        hits = self.query_one("#hits", OptionList)
        if self.results:
            self.open_result(hits.highlighted or 0)

    def open_result(self, index: int) -> None:
        if 0 <= index < len(self.results):
            result = self.results[index]
            hits = [result.hit] if result.hit is not None else result.meeting.hits
            segment = next((h.segment_id for h in hits if not h.is_note), None)
            self.app.post_message(OpenMeeting(result.meeting.session_id, focus_segment_id=segment))

    def action_results(self) -> None:
        hits = self.query_one("#hits", OptionList)
        if self.results:
            hits.focus()

    def action_focus_query(self) -> None:
        self.query_one("#query", Input).focus()

    def action_back(self) -> None:
        self.dismiss()
