"""The live meeting screen, driven by Textual's pilot over a scripted engine and a realtime
paced file: what is shown, what is stored, and every key."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.widgets import Static

from notetaker.audio import FileSource
from notetaker.tui.app import make_app
from notetaker.tui.deps import AppDeps
from notetaker.tui.screens.live import LiveScreen, RecorderMessages
from storage import SessionStore
from tests.app.conftest import write_wav
from tests.app.scripted import ScriptedEngine, final
from tests.app.test_recorder import FINAL_TEXTS, SCRIPT
from tests.rewrite.scripted_backend import ScriptedBackend

FINALS = FINAL_TEXTS


class Upper(ScriptedBackend):
    def cleanup(self, segments):
        return [s.text.upper() for s in segments]


@pytest.fixture
def store(tmp_path: Path):
    s = SessionStore.open(tmp_path / "home" / "notetaker.db")
    yield s
    s.close()


def deps_for(store, tmp_path, seconds=3.0, speed=2.0, script=SCRIPT, **kw) -> AppDeps:
    wav = write_wav(tmp_path / "meeting.wav", seconds)
    backends = {"mlx": Upper, "voxtral": Upper, "openai": Upper}
    return AppDeps(store=store, engine_factory=lambda: ScriptedEngine(script),
                   source_factory=lambda: FileSource.open(wav, realtime=True, speed=speed),
                   rewrite_factory=lambda name: backends[name]() if name in backends else None,
                   title="Launch sync", export_dir=tmp_path / "exports", **kw)


async def wait_for(pilot, condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


def live(app) -> LiveScreen:
    return next(s for s in app.screen_stack if isinstance(s, LiveScreen))


def shown_finals(screen: LiveScreen) -> list[str]:
    return [str(w.render()) for w in screen.query(".final").results(Static)]


def test_finals_partials_status_and_a_safe_finish(store, tmp_path):
    async def run():
        app = make_app(deps_for(store, tmp_path), live=True)
        partials_seen: list[str] = []
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "recording")
            while screen.state == "recording" and len(shown_finals(screen)) < 3:
                text = str(screen.query_one("#partial", Static).render())
                if text and (not partials_seen or partials_seen[-1] != text):
                    partials_seen.append(text)
                await pilot.pause(0.02)
            await wait_for(pilot, lambda: screen.state == "finished")
            finals = shown_finals(screen)
            status = screen.status_text()
            sid = screen.session_id
            await pilot.press("q")
        return partials_seen, finals, status, sid

    partials_seen, finals, status, sid = asyncio.run(run())
    assert [f.split("] ", 1)[1] for f in finals] == FINALS
    assert finals[0].startswith("[#1 00:00:00] ") and finals[1].startswith("[#2 00:00:01] ")  # #n: what summaries cite
    assert partials_seen and set(partials_seen) <= {"we should", "we should ship", "who owns", "Dana"}
    assert "scripted/script-v1" in status and "behind" in status and "RTF" in status and "dropped 0" in status
    s = store.get_session(sid)
    assert s.status == "complete" and s.title == "Launch sync"
    stored = [seg.text for seg in store.segments(sid)]
    assert stored == FINALS  # partials are never stored


def test_q_mid_meeting_saves_everything_heard_and_exits(store, tmp_path):
    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=6.0, speed=1.0), live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: len(shown_finals(screen)) >= 1)
            sid = screen.session_id
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=15)
        return sid, shown_finals(screen)

    sid, shown = asyncio.run(run())
    s = store.get_session(sid)
    assert s.status == "complete" and s.duration_s < 6.0  # ended by the user: complete with what was heard
    assert [seg.text for seg in store.segments(sid)][: len(shown)] == [f.split("] ", 1)[1] for f in shown]


def test_space_pauses_and_resumes_capture(store, tmp_path):
    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=4.0, speed=1.0), live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "recording" and screen.progress is not None)
            await pilot.press("space")
            assert screen.recorder.paused and "PAUSED" in screen.status_text()
            await pilot.pause(0.6)
            paused_at = screen.progress.audio_s
            await pilot.pause(0.6)
            still = screen.progress.audio_s
            await pilot.press("space")
            assert not screen.recorder.paused and "REC" in screen.status_text()
            await wait_for(pilot, lambda: screen.state == "finished", timeout=15)
            await pilot.press("q")
        return paused_at, still

    paused_at, still = asyncio.run(run())
    assert still - paused_at <= 0.15  # no audio taken while paused


def test_m_marks_the_moment(store, tmp_path):
    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=4.0, speed=1.0), live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.progress is not None and screen.progress.audio_s > 0.5)
            await pilot.press("m")
            await pilot.pause(0.1)
            await pilot.press("d")  # decision
            await pilot.pause(0.1)
            await pilot.press(*"ship friday")
            await pilot.press("enter")
            await pilot.pause(0.2)
            sid = screen.session_id
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=15)
        return sid

    sid = asyncio.run(run())
    marks = store.marks(sid)
    assert [(m.kind, m.text) for m in marks] == [("decision", "ship friday")]
    assert 0.4 < marks[0].t_s < 4.0


def test_r_cycles_the_rewrite_backend_and_cleans_live(store, tmp_path):
    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=3.0, speed=1.0), live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "recording" and screen.recorder is not None)
            await pilot.press("r")
            assert screen.rewrite_name == "mlx" and "rewrite mlx" in screen.status_text()
            await wait_for(pilot, lambda: screen.state == "finished", timeout=15)
            await wait_for(pilot, lambda: shown_finals(screen) and shown_finals(screen)[-1].endswith("DANA DOES."))
            finals = shown_finals(screen)
            sid = screen.session_id
            for expected in ("voxtral", "openai", "none", "mlx"):
                await pilot.press("r")
                assert screen.rewrite_name == expected
            await pilot.press("q")
        return finals, sid

    finals, sid = asyncio.run(run())
    assert [f.split("] ", 1)[1] for f in finals] == [t.upper() for t in FINALS]  # shown cleaned
    assert [s.text for s in store.segments(sid)] == FINALS  # raw kept
    assert [s.clean_text for s in store.segments(sid)] == [t.upper() for t in FINALS]


def test_e_exports_and_t_renames(store, tmp_path):
    async def run():
        deps = deps_for(store, tmp_path)
        app = make_app(deps, live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "finished")
            await pilot.press("t")
            await pilot.pause(0.1)
            await pilot.press("ctrl+a", "ctrl+k", *"Release plan")  # clear the old title, type a new one
            await pilot.press("enter")
            await pilot.pause(0.1)
            await pilot.press("e")
            await pilot.pause(0.1)
            sid = screen.session_id
            await pilot.press("q")
        return deps, sid

    deps, sid = asyncio.run(run())
    assert store.get_session(sid).title == "Release plan"
    files = list((tmp_path / "exports").glob("*.md"))
    assert len(files) == 1 and "We should ship on Friday." in files[0].read_text()


def test_s_opens_the_summary_of_this_meeting(store, tmp_path):
    from notetaker.tui.screens.summary import SummaryScreen

    async def run():
        app = make_app(deps_for(store, tmp_path), live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "finished")
            await pilot.press("s")
            await pilot.pause(0.2)
            top = app.screen
            ok = isinstance(top, SummaryScreen) and top.session_id == screen.session_id
        return ok

    assert asyncio.run(run())


def test_a_bad_engine_is_one_notice_and_nothing_is_saved(store, tmp_path):
    from asr.base import ASRError

    def broken():
        raise ASRError("unknown Qwen3-ASR model 'nope'")

    async def run():
        deps = deps_for(store, tmp_path)
        deps.engine_factory = broken
        app = make_app(deps, live=True)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "failed")
            await pilot.press("q")
        return screen

    screen = asyncio.run(run())
    assert store.list_sessions() == [] and "stopped" in screen.status_text()


def test_fast_messages_collapse(store, tmp_path):
    """Partials posted faster than the screen takes them reach it as one: the newest."""
    import threading

    from asr.base import ASRError, Partial

    from notetaker.recorder import Progress
    from notetaker.tui.messages import PartialChanged, ProgressChanged

    hold = threading.Event()

    def held():  # the recorder never starts, so only this test's messages arrive
        hold.wait(30)
        raise ASRError("held back")

    handled: list = []

    def hook(message) -> None:
        # Once each: after the screen, a message bubbles up to the app.
        if isinstance(message, (PartialChanged, ProgressChanged)) and all(m is not message for m in handled):
            handled.append(message)

    async def run():
        deps = deps_for(store, tmp_path)
        deps.engine_factory = held
        app = make_app(deps, live=True)
        async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
            await pilot.pause()
            screen = live(app)
            listener = RecorderMessages(screen)
            for i in range(50):  # all queued before the screen handles any
                listener.on_partial(Partial(f"p{i}", 0, 1))
            await pilot.pause(0.05)
            first = [m.text for m in handled]
            shown = str(screen.query_one("#partial", Static).render())
            listener.on_partial(Partial("next", 0, 1))
            await pilot.pause(0.05)
            second = len(handled)
            for i in range(3):
                listener.on_progress(Progress(audio_s=float(i), done_s=0.0, compute_s=0.0, wall_s=1.0))
            await pilot.pause(0.05)
            progress = [m.progress.audio_s for m in handled[second:]]
            hold.set()
        return first, shown, second, progress

    try:
        first, shown, second, progress = asyncio.run(run())
    finally:
        hold.set()
    assert first == ["p49"] and shown == "p49"
    assert second == 2
    assert progress == [2.0]


def test_the_view_follows_new_finals_unless_scrolled_up(store, tmp_path):
    script = [final(0.1 * i + 0.1, f"line {i}", start=0.1 * i) for i in range(60)]

    async def run():
        app = make_app(deps_for(store, tmp_path, seconds=7.0, speed=4.0, script=script), live=True)
        async with app.run_test(size=(80, 20)) as pilot:
            screen = live(app)
            view = screen.query_one("#transcript")
            await wait_for(pilot, lambda: len(shown_finals(screen)) >= 30, timeout=60)
            # Paused, so that finals are still to come however slow the machine is (a busy one
            # could otherwise show all 60 before the view is scrolled up).
            screen.recorder.pause()
            await pilot.pause(0.5)
            at_bottom = view.scroll_y >= view.max_scroll_y - 1
            view.scroll_to(y=0, animate=False)
            await pilot.pause(0.05)
            n = len(shown_finals(screen))
            assert n < 55
            screen.recorder.resume()
            await wait_for(pilot, lambda: len(shown_finals(screen)) > n + 5, timeout=60)
            stayed = view.scroll_y <= 1
            view.scroll_end(animate=False)
            await wait_for(pilot, lambda: screen.state == "finished", timeout=60)
            await pilot.pause(0.2)
            back = view.scroll_y >= view.max_scroll_y - 1
            await pilot.press("q")
        return at_bottom, stayed, back

    at_bottom, stayed, back = asyncio.run(run())
    assert at_bottom and stayed and back


# -- the header, the transcript's layout, marks and notifications (fed messages, no recorder) --


def held_app(store, tmp_path, hold, size=(100, 30)):
    """A live app whose recorder never starts: the test feeds the screen the recorder's own
    messages, so nothing depends on timing."""
    from asr.base import ASRError

    def held():
        hold.wait(30)
        raise ASRError("held back")

    deps = deps_for(store, tmp_path)
    deps.engine_factory = held
    return make_app(deps, live=True)


def feed_meeting(screen, store, n: int, step: float = 4.0, audio_s: float = 14.2) -> int:
    from notetaker.recorder import Progress
    from notetaker.tui.messages import FinalAdded, ProgressChanged, Started

    sid = store.create_session("Launch sync", "whisper", "tiny.en")
    screen.post_message(Started(sid, "whisper/tiny.en"))
    for i in range(n):
        screen.post_message(FinalAdded(store.add_segment(sid, f"line {i}", step * i, step * i + 3.5)))
    screen.post_message(ProgressChanged(Progress(audio_s=audio_s, done_s=audio_s, compute_s=1.0, wall_s=audio_s)))
    return sid


def run_held(store, tmp_path, scenario, size=(100, 30)):
    import threading

    hold = threading.Event()

    async def run():
        app = held_app(store, tmp_path, hold)
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.pause()
            try:
                return await scenario(pilot, live(app))
            finally:
                hold.set()

    try:
        return asyncio.run(run())
    finally:
        hold.set()


def lines_of(screen: LiveScreen) -> list[str]:
    return [str(w.render()) for w in screen.query_one("#transcript").query(".final, .mark").results(Static)]


def test_the_header_shows_the_title_and_the_meetings_time(store, tmp_path):
    async def scenario(pilot, screen):
        before = str(screen.query_one("#meeting-title", Static).render())
        feed_meeting(screen, store, 1, audio_s=75.4)
        await pilot.pause(0.05)
        title, elapsed = (str(screen.query_one(f"#{i}", Static).render()) for i in ("meeting-title", "elapsed"))
        header = screen.query_one("#live-header").region
        await pilot.press("t")
        await pilot.pause(0.05)
        await pilot.press("ctrl+a", "ctrl+k", *"Release plan", "enter")
        await pilot.pause(0.05)
        return before, title, elapsed, header, str(screen.query_one("#meeting-title", Static).render())

    before, title, elapsed, header, renamed = run_held(store, tmp_path, scenario)
    assert before == title == "Launch sync" and elapsed == "⏱ 00:01:15"
    assert header.y == 0 and header.height == 1  # the first line of the screen
    assert renamed == "Release plan"


def test_the_transcript_fills_from_the_top(store, tmp_path):
    async def scenario(pilot, screen):
        feed_meeting(screen, store, 3)
        await pilot.pause(0.05)
        view = screen.query_one("#transcript")
        first = next(iter(view.query(".final")))
        return view.region, first.region

    view, first = run_held(store, tmp_path, scenario, size=(160, 45))
    assert first.y == view.y  # not at the bottom under empty rows
    assert view.height > 30


def test_a_mark_shows_between_the_finals_at_its_moment(store, tmp_path):
    from notetaker.recorder import Progress
    from notetaker.tui.messages import FinalAdded, ProgressChanged

    async def scenario(pilot, screen):
        sid = feed_meeting(screen, store, 3, audio_s=6.0)  # finals at 0, 4 and 8 s; a mark at 6 s
        await pilot.pause(0.05)
        await pilot.press("m", "d", *"ship friday", "enter")
        await pilot.pause(0.05)
        screen.post_message(ProgressChanged(Progress(audio_s=10.0, done_s=8.5, compute_s=1.0, wall_s=10.0)))
        await pilot.pause(0.05)
        await pilot.press("m", "a", *"notes", "enter")  # at 10 s, after every final so far
        await pilot.pause(0.05)
        # a final that started before that mark but came after it goes above it; a later one below
        screen.post_message(FinalAdded(store.add_segment(sid, "late but earlier", 9.0, 9.9)))
        screen.post_message(FinalAdded(store.add_segment(sid, "after the mark", 11.0, 11.9)))
        await pilot.pause(0.05)
        return lines_of(screen), screen.query_one("#transcript").query(".mark").first().region

    lines, mark = run_held(store, tmp_path, scenario)
    assert lines == ["[#1 00:00:00] line 0", "[#2 00:00:04] line 1", "▸ [00:00:06] Decision: ship friday",
                     "[#3 00:00:08] line 2", "[#4 00:00:09] late but earlier", "▸ [00:00:10] Action: notes",
                     "[#5 00:00:11] after the mark"]
    assert mark.height == 1


def test_a_toast_never_covers_the_transcript(store, tmp_path):
    from textual.widgets._toast import Toast

    async def scenario(pilot, screen):
        feed_meeting(screen, store, 40, step=1.0)  # more lines than fit: the newest are at the bottom
        await pilot.pause(0.05)
        before = screen.query_one("#transcript").region
        screen.notify("a long notice that takes several lines of the toast " * 3, timeout=30)
        screen.notify("and a second one", timeout=30)
        await pilot.pause(0.1)
        view = screen.query_one("#transcript")
        toasts = [t.region for t in screen.query(Toast)]
        shown = [w.region for w in view.query(".final") if w.region.height]  # the lines on screen
        last = str(list(view.query(".final").results(Static))[-1].render())
        return before, view.region, toasts, shown, last, screen.query_one("#status").region

    before, view, toasts, shown, last, status = run_held(store, tmp_path, scenario)
    assert len(toasts) == 2 and all(t.height >= 3 for t in toasts)
    assert view.height < before.height  # the transcript made room for them
    for toast in toasts:
        assert not toast.overlaps(view) and not toast.overlaps(status)
        assert not any(toast.overlaps(line) for line in shown)
    assert shown and last == "[#40 00:00:39] line 39" and shown[-1].bottom <= view.bottom  # the newest still in view
