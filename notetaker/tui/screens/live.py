"""The live meeting: a header with its title and elapsed time, finals appended with their
times and marks between them, the partial in place (dim, never stored), a status bar, the
person's own notes beside them (`n`), and the meeting's keys; a past final can be corrected
(`c`, `u`, `f`: notetaker/tui/corrections.py) while the next ones keep coming. Notifications take a strip of
their own above the footer (app.tcss), so they never cover the transcript.

The recorder runs on its own compute thread (all model work); a listener turns its events
into messages (messages.py) that the transcript widget (widgets/live_transcript.py) and the
status bar show. Fast ones collapse: a newer partial or progress replaces one still waiting
to be shown, so a slow frame never queues up stale text.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from notetaker.recorder import Progress, Recorder, RecorderListener, RecordingResult
from notetaker.tui.corrections import CORRECTION_KEYS, Corrections
from notetaker.tui.deps import REWRITE_CYCLE, AppDeps
from notetaker.tui.dialogs import MarkDialog, SpeakersDialog, TextPrompt
from notetaker.inert import inert
from notetaker.errors import one_line
from notetaker.tui.messages import (Cleaned, FinalAdded, Finished, LiveEnded, NoteSaved, Notice, OpenSummary,
                                    PartialChanged, ProgressChanged, Relabelled, RewriteOff, Started)
from notetaker.tui.palette import KeyCommands
from notetaker.tui.widgets.live_transcript import LiveTranscript
from notetaker.tui.widgets.notes_pane import NotesPane
from storage import SegmentRecord, StoreError
from storage.export import clock


class RecorderMessages(RecorderListener):
    """Recorder events (compute thread) → messages to the live screen (thread-safe posts).

    Partials and progress replace older ones still waiting (`can_replace`), so they collapse."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    def on_started(self, session) -> None:
        self.screen.post_message(Started(session.id, f"{session.engine}/{session.model}"))

    def on_capture_error(self, message: str, saved: bool = True) -> None:
        tail = "; everything so far is saved" if saved else ""
        self.screen.post_message(Notice(f"capture stopped: {message}{tail}", "error"))

    def on_partial(self, partial) -> None:
        self.screen.post_message(PartialChanged(partial.text))

    def on_final(self, final, segment) -> None:
        self.screen.post_message(FinalAdded(segment))

    def on_progress(self, progress: Progress) -> None:
        self.screen.post_message(ProgressChanged(progress))

    def on_cleaned(self, segments) -> None:
        self.screen.post_message(Cleaned(list(segments)))

    def on_rewrite_error(self, message: str) -> None:
        self.screen.post_message(RewriteOff(message))

    def on_speakers_error(self, message: str) -> None:
        self.screen.post_message(Notice(f"speaker labels are off: {message}", "warning"))

    def on_relabelled(self, changed: int) -> None:
        self.screen.post_message(Relabelled())

    def on_finished(self, result: RecordingResult) -> None:
        self.screen.post_message(Finished(result))


class LiveScreen(Corrections, Screen):
    COMMANDS = {KeyCommands}
    BINDINGS = [
        Binding("space", "pause", "Pause/resume"),
        Binding("m", "mark", "Mark"),
        Binding("n", "notes", "Notes"),
        Binding("N", "toggle_notes", "Hide/show notes", show=False),
        Binding("escape", "transcript", "Back to the transcript", show=False),
        Binding("r", "cycle_rewrite", "Rewrite backend"),
        Binding("s", "summarize", "Summarize"),
        Binding("e", "export", "Export"),
        Binding("t", "rename", "Rename"),
        Binding("S", "speakers", "Speakers"),
        *CORRECTION_KEYS,
        Binding("q", "finish", "Finish"),
    ]

    def __init__(self, deps: AppDeps) -> None:
        super().__init__()
        self.deps = deps
        self.recorder: Recorder | None = None
        self.session_id: int | None = None
        self.listener = RecorderMessages(self)
        self.rewrite_name = deps.rewrite_backend
        self.rewrite_failed = False  # the backend named failed: the status bar says so
        self.engine_label = deps.engine_label or "loading…"
        self.progress: Progress | None = None
        self.state = "starting"  # starting, recording, paused, finishing, finished, failed
        self.title_text = deps.title
        self._when_done: str | None = None  # once the recorder finished: "leave" the screen or "quit" the app

    def compose(self) -> ComposeResult:
        with Horizontal(id="live-header"):
            yield Static(id="meeting-title")
            yield Static(id="elapsed")
        yield Static(id="status")
        with Horizontal(id="live-body"):
            yield LiveTranscript(id="transcript")
            yield NotesPane(id="notes-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(NotesPane).display = False  # `n` opens it
        self._render_header()
        self._render_status()
        if self.deps.rewrite_off:
            self.post_message(RewriteOff(self.deps.rewrite_off))
        self._record()

    # -- the compute thread ---------------------------------------------------------------
    def _speakers(self, source):
        """The recorder's diarizer factory for this source's channels (None: no speaker labels)."""
        make = self.deps.speakers_factory
        return (lambda: make(tuple(source.channels))) if make is not None else None

    @work(thread=True, exclusive=True, group="compute", name="compute")
    def _record(self) -> None:
        from asr.base import ASRError

        from notetaker.audio import AudioError

        name, _, model = self.deps.engine_label.partition("/")
        try:
            # With the engine's name known, capture starts at once and the engine loads on the
            # compute thread while audio is already being spooled; otherwise load it first.
            engine = self.deps.engine_factory if name and model else self.deps.engine_factory()
            source = self.deps.source_factory()
        except (ASRError, AudioError) as e:
            self.post_message(Finished(None, str(e)))
            return
        name_at_start = self.rewrite_name
        # The rewrite backend loads on the compute thread once there is text to clean, not
        # before capture starts; if it fails the meeting goes on and the status bar says so.
        rewrite_factory = (lambda: self.deps.rewrite_factory(name_at_start)) if name_at_start != "none" else None
        self.recorder = Recorder(self.deps.store, engine, source, title=self.deps.title, options=self.deps.options,
                                 realtime=self.deps.realtime, listeners=[self.listener], rewrite_factory=rewrite_factory,
                                 clock=self.deps.clock, audio_path=self.deps.audio_path,
                                 engine_label=(name, model) if name and model else None,
                                 spool_dir=self.deps.spool_dir, keep_audio=self.deps.keep_audio,
                                 speakers=self._speakers(source))
        self.app.recorder = self.recorder
        if get_current_worker().is_cancelled:  # the app closed while the engine loaded
            source.close()
            return
        try:
            self.recorder.run()
        except Exception as e:  # the store already holds every final; say what stopped it
            self.post_message(Finished(None, f"{type(e).__name__}: {e}"))
        finally:
            source.close()

    # -- messages --------------------------------------------------------------------------
    @on(Started)
    def _started(self, m: Started) -> None:
        self.session_id, self.engine_label, self.state = m.session_id, m.engine_label, "recording"
        try:  # the stored meeting's title (a continued meeting keeps its own)
            self.title_text = self.deps.store.get_session(m.session_id).title or self.title_text
        except StoreError:
            pass
        self._render_header()
        self._render_status()

    @on(FinalAdded)
    def _final(self, m: FinalAdded) -> None:
        self.query_one(LiveTranscript).add_final(m.segment)

    @on(PartialChanged)
    def _partial(self, m: PartialChanged) -> None:
        self.query_one(LiveTranscript).show_partial(m.text or "")

    @on(ProgressChanged)
    def _progress(self, m: ProgressChanged) -> None:
        self.progress = m.progress
        self._render_header()
        self._render_status()

    @on(Cleaned)
    def _cleaned(self, m: Cleaned) -> None:
        self.query_one(LiveTranscript).show_cleaned(m.segments)

    @on(Notice)
    def _notice(self, m: Notice) -> None:
        self.notify(m.text, severity=m.severity)

    @on(RewriteOff)
    def _rewrite_off(self, m: RewriteOff) -> None:
        if self.rewrite_name != "none":
            self.rewrite_failed = True
        where = f" (clean it later: notetaker summarize --clean {self.session_id})" if self.session_id else ""
        self.notify(f"cleanup is off: {m.reason}; the meeting records without it{where}", severity="warning",
                    timeout=10)
        self._render_status()

    @on(Finished)
    def _finished(self, m: Finished) -> None:
        self.app.recorder = None
        if m.error:
            self.state = "failed"
            self.notify(m.error, severity="error", timeout=10)
        else:
            self.state = "finished"
            if m.result is not None:
                self.progress = m.result.progress
        self.query_one(LiveTranscript).clear_partial()
        self._render_header()
        self._render_status()
        if self._when_done == "quit":
            self.app.exit(m.result)
        elif self._when_done == "leave":
            self.post_message(LiveEnded(m.result, m.error))

    # -- header ----------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """The meeting's time: the audio taken so far (what finals and marks are timed by)."""
        return self.progress.audio_s if self.progress is not None else 0.0

    def _render_header(self) -> None:
        self.query_one("#meeting-title", Static).update(inert(self.title_text or "Untitled"))
        self.query_one("#elapsed", Static).update(f"⏱ {clock(self.elapsed_s())}")

    # -- status ----------------------------------------------------------------------------
    def status_text(self) -> str:
        p = self.progress
        parts = [self.engine_label]
        if self.deps.options.delay_ms:
            parts.append(f"delay {self.deps.options.delay_ms} ms")
        if p is not None:  # the meeting's time is in the header
            parts += [f"behind {p.lag_s:.1f} s", f"RTF {p.rtf:.2f}",
                      f"dropped {p.dropped_frames}", f"{p.level_db:.0f} dB"]
            if p.waiting:  # the store refuses finals: they wait in memory, capture goes on
                parts.append(f"⚠ {p.waiting} finals waiting: {p.store_problem}")
        rewrite = f"rewrite {self.rewrite_name} ✖ failed" if self.rewrite_failed else (
            "rewrite off" if self.deps.rewrite_off and self.rewrite_name == "none" else f"rewrite {self.rewrite_name}")
        parts += [rewrite, self._memory()]
        state = {"recording": "● REC", "paused": "❚❚ PAUSED", "finishing": "saving…", "finished": "■ done",
                 "failed": "✖ stopped", "starting": "starting…"}[self.state]
        return f"{state} " + " · ".join(parts)

    def _memory(self) -> str:
        rss = (self.deps.memory_probe or _rss_bytes)()
        budget, planned = self.deps.memory_budget_bytes, self.deps.memory_planned_bytes
        text = f"mem {rss / 2**30:.1f} GB"
        if planned:
            text += f" (plan {planned / 2**30:.1f}" + (f" of {budget / 2**30:.1f})" if budget else ")")
        elif budget:
            text += f" of {budget / 2**30:.1f}"
        return text

    def _render_status(self) -> None:
        self.query_one("#status", Static).update(self.status_text())

    # -- keys --------------------------------------------------------------------------------
    def action_pause(self) -> None:
        if self.recorder is None or self.state not in ("recording", "paused"):
            return
        if self.recorder.paused:
            self.recorder.resume()
            self.state = "recording"
        else:
            self.recorder.pause()
            self.state = "paused"
        self._render_status()

    def action_mark(self) -> None:
        if self.session_id is None:
            return
        at = self.progress.audio_s if self.progress else 0.0

        def done(choice) -> None:
            if choice:
                kind, text = choice
                mark = self.deps.store.add_mark(self.session_id, at, kind, text or "")
                self.query_one(LiveTranscript).add_mark(mark)
                self.notify(f"marked {kind} at {clock(at)}")

        self.app.push_screen(MarkDialog(), done)

    # -- the person's own notes ---------------------------------------------------------------
    def action_notes(self) -> None:
        """Open the notes pane (if hidden) and type in it."""
        pane = self.query_one(NotesPane)
        pane.display = True
        pane.input.focus()

    def action_toggle_notes(self) -> None:
        pane = self.query_one(NotesPane)
        pane.display = not pane.display
        (pane.input if pane.display else self.query_one(LiveTranscript)).focus()

    @on(NotesPane.NoteEntered)
    def _note_entered(self, m: NotesPane.NoteEntered) -> None:
        if self.session_id is None:
            self.notify("the meeting has not started yet; the note is kept in the box", severity="warning")
            return
        pane = self.query_one(NotesPane)
        if m.note is None:
            at = self.progress.audio_s if self.progress else 0.0  # the meeting time it was typed at
            pane.input.value = ""
            self._save_note(self.session_id, at, m.text)
        else:
            pane.stop_editing()
            self._change_note(m.note, m.text)

    @work(thread=True, group="notes")
    def _save_note(self, session_id: int, at: float, text: str) -> None:
        # Off the UI thread: the store may be busy (the recorder's writes, another process).
        try:
            note = self.deps.store.add_note(session_id, at, text)
        except StoreError as e:
            self.post_message(Notice(f"note not saved ({e}): {text}", "error"))
            return
        self.post_message(NoteSaved(note))

    @work(thread=True, group="notes")
    def _change_note(self, note, text: str) -> None:
        """A saved line changed, or deleted when emptied; off the UI thread as a save is."""
        try:
            if text:
                changed = self.deps.store.edit_note(note.id, text)
            else:
                self.deps.store.delete_note(note.id)
        except StoreError as e:
            self.post_message(Notice(f"note not changed ({e}): {text or note.text}", "error"))
            return
        pane = self.query_one(NotesPane)
        if text:
            self.app.call_from_thread(pane.change_note, changed)
        else:
            self.app.call_from_thread(pane.remove_note, note.id)

    @on(NoteSaved)
    def _note_saved(self, m: NoteSaved) -> None:
        self.query_one(NotesPane).add_note(m.note)

    # -- corrections of past finals (notetaker/tui/corrections.py) ------------------------------
    def editable_lines(self) -> tuple[list[SegmentRecord], int]:
        """Every final so far, the newest selected (the dialog's ↑ goes back)."""
        finals = self.query_one(LiveTranscript).finals()
        return finals, len(finals) - 1

    def show_corrected(self, segments: list[SegmentRecord]) -> None:
        self.query_one(LiveTranscript).show_edited(segments)

    def action_transcript(self) -> None:
        """Escape: stop editing a saved line; else, from typing a note back to the transcript
        (the pane stays open)."""
        if self.query_one(NotesPane).stop_editing(restore=True):
            return
        self.query_one(LiveTranscript).focus()

    def action_cycle_rewrite(self) -> None:
        i = REWRITE_CYCLE.index(self.rewrite_name) if self.rewrite_name in REWRITE_CYCLE else 0
        name = REWRITE_CYCLE[(i + 1) % len(REWRITE_CYCLE)]
        self.rewrite_name = name
        self._render_status()

        def load() -> None:
            try:
                backend = self.deps.rewrite_factory(name) if name != "none" else None
            except Exception as e:  # whatever a load throws: the meeting goes on
                self.post_message(RewriteOff(f"rewrite {name}: {one_line(e)}"))
                return
            self.rewrite_failed = False
            if self.recorder is not None:
                old = self.recorder.swap_rewrite(backend)
                if old is not None:
                    old.close()
            self.post_message(Notice(f"rewrite backend: {name}"))

        self.app.run_job(load, name="rewrite-load")

    def action_summarize(self) -> None:
        if self.session_id is not None:
            self.app.post_message(OpenSummary(self.session_id, self.rewrite_name
                                              if self.rewrite_name != "none" else None))

    def action_export(self) -> None:
        if self.session_id is None:
            return
        from notetaker.summary import export_session, os_error_text

        try:
            path = export_session(self.deps.store, self.session_id, self.deps.export_dir)
        except OSError as e:
            self.notify(f"cannot export: {os_error_text(e)}", severity="error")
            return
        self.notify(f"exported {path}")

    def action_rename(self) -> None:
        if self.session_id is None:
            return
        current = self.deps.store.get_session(self.session_id).title

        def done(title) -> None:
            if title:
                self.deps.store.rename_session(self.session_id, title)
                self.title_text = title
                self._render_header()
                self.notify(f"renamed to {title}")

        self.app.push_screen(TextPrompt("Rename meeting", current), done)

    def action_speakers(self) -> None:
        """Name the speakers or merge two, mid-meeting: the lines shown and every new final
        show the names."""
        if self.session_id is None:
            return
        sid = self.session_id

        def done(changed: bool | None) -> None:
            if changed:
                self._show_speakers()

        self.app.push_screen(SpeakersDialog(self.deps.store, sid), done)

    @on(Relabelled)
    def _show_speakers(self) -> None:
        """Every line shown says who speaks as the store has it now (a rename or merge, or the
        end-of-meeting pass's labels)."""
        if self.session_id is None:
            return
        try:
            names = self.deps.store.speaker_names(self.session_id)
            segments = self.deps.store.segments(self.session_id)
        except StoreError as e:
            self.notify(str(e), severity="error")
            return
        self.query_one(LiveTranscript).show_speakers(names, segments)

    def action_finish(self) -> None:
        """Finish safely: stop the recorder, let it save everything, then leave the screen
        (the app says where to: back to the meetings, or out of `notetaker record`)."""
        self.finish("leave")

    def finish(self, then: str = "leave") -> None:
        """End the meeting; once it is saved, "leave" the screen or "quit" the app."""
        if self.state in ("finished", "failed") or self.recorder is None:
            if then == "quit":
                self.app.exit()
            else:
                self.post_message(LiveEnded(None))
            return
        self._when_done = then
        self.state = "finishing"
        self._render_status()
        self.recorder.end()  # the meeting ends here, live or a file: complete with what was heard

    def scroll_to_segment(self, segment_id: int) -> bool:
        """Bring a final into view (a citation in a summary of this meeting points at it)."""
        return self.query_one(LiveTranscript).scroll_to_segment(segment_id)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
