"""A meeting's summary: the stored one first; a new one streams in as the model writes it.

The model runs through `app.run_job` (the live meeting's compute thread, or a worker), never
on the UI thread; the job posts messages (the text so far, collapsed when they arrive faster
than they can be drawn; then done or failed). Citations like `[#12]` become links; following
one shows the cited segment.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from notetaker.inert import inert
from notetaker.summary import check_transcript, removed_citations_note, summarize_session
from notetaker.tui.deps import AppDeps
from notetaker.tui.display import cited_numbers, linkify_citations, segment_from_href
from notetaker.tui.messages import ShowSegment, SummaryDone, SummaryFailed, SummaryStreamed
from notetaker.tui.palette import KeyCommands
from storage import SegmentRecord, StoreError, SummaryRecord
from storage.export import clock


class SummaryScreen(Screen):
    COMMANDS: ClassVar[set] = {KeyCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "regenerate", "Regenerate"),
        Binding("s", "regenerate", "Summarize again", show=False),
        Binding("c", "citations", "Citations"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, deps: AppDeps, session_id: int, backend_name: str | None = None) -> None:
        super().__init__()
        self.deps = deps
        self.session_id = session_id
        self.backend_name = backend_name
        self.stored: SummaryRecord | None = None
        self.running = False
        self.error: str | None = None
        self.text = ""  # what the Markdown widget shows (before links)
        self._shown = ""
        self._segments: dict[int, SegmentRecord] = {}  # by number (seq), what citations name
        self.choice = None  # a RewriteChoice picked from the offered ones (wins over the backend name)
        self._choices: list = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary-info")
        with VerticalScroll(id="summary-scroll"):
            yield Markdown(id="summary", open_links=False)
        yield OptionList(id="citations")
        yield OptionList(id="backends")  # offered when a summary cannot be made
        yield Footer()

    async def on_mount(self) -> None:
        try:
            session = self.deps.store.get_session(self.session_id)
            self.stored = self.deps.store.latest_summary(self.session_id)
        except StoreError as e:
            self._fail(str(e))
            return
        self.sub_title = f"Summary · {inert(session.title or 'Untitled')}"
        self.query_one("#backends", OptionList).display = False
        if self.stored is not None:
            await self._show_stored(self.stored)
        else:
            self.action_regenerate()

    # -- the model, off the UI thread -----------------------------------------------------------
    @property
    def rewrite_name(self) -> str | None:
        """The backend to write with: the one asked for, else the plan's (None: none is set up,
        as doctor and `summarize` say too)."""
        configured = self.deps.rewrite_backend if self.deps.rewrite_backend != "none" else None
        return self.backend_name or configured

    def action_regenerate(self) -> None:
        if self.running:
            self.notify("the summary is still being written", severity="warning")
            return
        if self.choice is None and self.rewrite_name is None:
            from notetaker.budget import NO_REWRITE_MODEL

            self._fail(NO_REWRITE_MODEL)
            return
        self.running, self.error = True, None
        self.query_one("#backends", OptionList).display = False
        self._set_info(f"writing a summary with {self.choice.label if self.choice else self.rewrite_name}…")
        app = self.app  # the job may outlive this screen, which then no longer knows its app
        self.app.run_job(lambda: self._job(app), name="summary")

    def _job(self, app: App) -> None:
        """Runs on the compute thread or a worker: loads the backend, writes, stores."""
        from rewrite.base import RewriteError
        from rewrite.prompts import load_template

        backend = None
        try:
            # Everything a user can get wrong is checked before a model loads.
            check_transcript(self.deps.store, self.session_id)
            template = load_template("default", self.deps.templates_dir) if self.deps.templates_dir else None
            if self.choice is not None and self.deps.rewrite_choice_factory is not None:
                backend = self.deps.rewrite_choice_factory(self.choice)
            else:
                backend = self.deps.rewrite_factory(self.rewrite_name)
            if backend is None:
                raise RewriteError(f"no rewrite backend named {self.rewrite_name!r} to summarize with")
            summary = summarize_session(self.deps.store, self.session_id, backend, template,
                                        on_text=lambda text: self.post_message(SummaryStreamed(text)))
        except (RewriteError, StoreError) as e:
            self._report(app, SummaryFailed(str(e)))
        except Exception as e:  # noqa: BLE001 - a model's own failure: one line; stored summaries stay
            self._report(app, SummaryFailed(f"{type(e).__name__}: {' '.join(str(e).split())}"))
        else:
            self._report(app, SummaryDone(summary))
        finally:
            if backend is not None:
                backend.close()

    def _report(self, app: App, message: SummaryDone | SummaryFailed) -> None:
        """To this screen; when it was closed meanwhile, a notification says how it ended."""
        if self.post_message(message):
            return
        if isinstance(message, SummaryDone):
            app.notify(f"summary of meeting {self.session_id} saved")
        else:
            app.notify(message.error, title="summary failed", severity="error")

    # -- messages --------------------------------------------------------------------------------
    @on(SummaryStreamed)
    async def _streamed(self, m: SummaryStreamed) -> None:
        if self.running:
            await self._show(m.text)

    @on(SummaryDone)
    async def _done(self, m: SummaryDone) -> None:
        self.running = False
        record, result = m.summary.record, m.summary.result
        self.stored = record
        await self._show(record.markdown)
        self._fill_citations(cited_numbers(record))
        notes = [f"saved · {record.backend}/{record.model}"]
        if result.chunks > 1:
            notes.append(f"{result.chunks} parts")
        if result.removed_citations:
            notes.append(removed_citations_note(result.removed_citations))
        self._set_info(" · ".join(notes))
        self.notify(f"summary of meeting {self.session_id} saved"
                    + (f"; {removed_citations_note(result.removed_citations)}" if result.removed_citations else ""))

    @on(SummaryFailed)
    async def _failed(self, m: SummaryFailed) -> None:
        self.running = False
        if self.stored is not None:  # a failed rewrite never hides the summary already saved
            await self._show(self.stored.markdown)
        self._fail(m.error)

    def _fail(self, error: str) -> None:
        self.error = error
        offered = self._offer_backends()
        tail = "; or pick one of these:" if offered else ""
        self._set_info(f"no summary: {error}{tail}", error=True)
        self.notify(error, title="no summary", severity="error")

    def _offer_backends(self) -> bool:
        """What is available now (models on this machine, servers running here), as a list to
        pick from; False when there is nothing to offer."""
        try:
            self._choices = [c for c in self.deps.rewrite_choices() if c != self.choice]
        except Exception:  # noqa: BLE001 - finding choices must not hide why the summary failed
            self._choices = []
        backends = self.query_one("#backends", OptionList)
        backends.clear_options()
        for i, choice in enumerate(self._choices):
            backends.add_option(Option(inert(choice.label), id=str(i)))
        backends.display = bool(self._choices)
        if self._choices:
            backends.focus()
            backends.highlighted = 0
        return bool(self._choices)

    @on(OptionList.OptionSelected, "#backends")
    def _backend_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.choice = self._choices[int(event.option.id)]
        self.action_regenerate()

    # -- drawing ----------------------------------------------------------------------------------
    async def _show_stored(self, record: SummaryRecord) -> None:
        await self._show(record.markdown)
        self._fill_citations(cited_numbers(record))
        when = record.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
        self._set_info(f"saved {when} · {record.backend or '-'}/{record.model or '-'} · r writes a new one")

    async def _show(self, text: str) -> None:
        self.text = text
        linked = linkify_citations(text)
        if linked == self._shown:
            return
        md = self.query_one("#summary", Markdown)
        if self._shown and linked.startswith(self._shown):
            await md.append(linked[len(self._shown):])
        else:
            await md.update(linked)
        self._shown = linked

    def _set_info(self, text: str, error: bool = False) -> None:
        info = self.query_one("#summary-info", Static)
        info.update(Text(text))
        info.set_class(error, "error")

    def _load_segments(self) -> None:
        if not self._segments:
            try:
                self._segments = {s.seq: s for s in self.deps.store.segments(self.session_id)}
            except StoreError:
                self._segments = {}

    def _fill_citations(self, numbers: list[int]) -> None:
        options = self.query_one("#citations", OptionList)
        options.clear_options()
        if numbers:
            self._load_segments()
        for n in numbers:
            seg = self._segments.get(n)
            if seg is None:
                continue
            line = Text(f"#{n} ", style="bold")
            line.append(f"[{clock(seg.start_s)}] ", style="dim")
            line.append(inert(seg.display_text))
            options.add_option(Option(line, id=str(seg.id)))
        options.display = options.option_count > 0

    # -- keys and links ----------------------------------------------------------------------------
    @on(Markdown.LinkClicked, "#summary")
    def _link(self, event: Markdown.LinkClicked) -> None:
        event.stop()
        number = segment_from_href(event.href)
        if number is None:
            return
        self._load_segments()
        seg = self._segments.get(number)
        if seg is None:
            self.notify(f"segment #{number} is not in this meeting", severity="warning")
        else:
            self.show_segment(seg.id)

    @on(OptionList.OptionSelected, "#citations")
    def _citation(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.show_segment(int(event.option.id))

    def show_segment(self, segment_id: int) -> None:
        self.app.post_message(ShowSegment(self.session_id, segment_id))

    def action_citations(self) -> None:
        options = self.query_one("#citations", OptionList)
        if options.option_count:
            options.focus()
            if options.highlighted is None:
                options.highlighted = 0
        else:
            self.notify("this summary cites no segments")

    def action_back(self) -> None:
        self.dismiss()
