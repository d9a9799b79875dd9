"""A rewrite backend never stands in a meeting's way (issue 17): a model that is missing,
cannot be downloaded, does not fit or fails to load, and a server that is down or not set
up, leave cleanup off with one line while every final lands — through the CLI
(`transcribe --realtime`, a real Whisper run) and the TUI's live screen (`record`)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from notetaker.tui.app import make_app
from storage import SessionStore
from tests.app.conftest import CLI, cli  # noqa: F401  (fixture)
from tests.tui.test_live import deps_for, live, shown_finals, wait_for


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broken_model(folder: Path) -> Path:
    """A model folder whose weights cannot load: a config, and a safetensors file that is not one."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64,
                                                    "num_hidden_layers": 2, "num_attention_heads": 4,
                                                    "vocab_size": 128, "intermediate_size": 128}))
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    return folder


MISCONFIGURED = {
    "not downloaded": (["--rewrite", "mlx"], {}),
    "does not fit": (["--rewrite", "mlx"], {"NOTETAKER_REWRITE_MODEL": "llama-3.1-8b",
                                             "NOTETAKER_MEMORY_BUDGET_GB": "2"}),
    "no server set up": (["--rewrite", "openai"], {"NOTETAKER_DETECT_SERVERS": "0"}),
    "server down": (["--rewrite", "openai"], {"NOTETAKER_OPENAI_BASE_URL": "http://127.0.0.1:{port}/v1"}),
    "downloads off": (["--rewrite", "mlx"], {"NOTETAKER_ALLOW_DOWNLOAD": "0"}),
    "fails to load": (["--rewrite", "mlx"], {"NOTETAKER_REWRITE_MODEL": "{broken}"}),
}


@pytest.fixture(scope="module")
def heard(tmp_path_factory) -> list[str]:
    """The finals of the same run with no rewrite backend at all."""
    base = tmp_path_factory.mktemp("plain")
    run = CLI(base)("transcribe", "--sample", "--realtime", "--speed", "8", "--json", "--rewrite", "none",
                    timeout=300)
    assert run.rc == 0, run.err
    texts = [e["text"] for e in map(json.loads, run.out.splitlines()) if e["type"] == "final"]
    assert len(texts) >= 3
    return texts


@pytest.mark.parametrize("case", list(MISCONFIGURED))
def test_transcribe_realtime_keeps_every_final_when_the_rewrite_backend_is_misconfigured(cli, heard, case):
    args, env = MISCONFIGURED[case]
    broken = _broken_model(cli.base / "broken-llm") if "{broken}" in str(env) else None
    env = {k: v.format(port=_closed_port(), broken=broken) for k, v in env.items()}
    run = cli("transcribe", "--sample", "--realtime", "--speed", "8", "--json", *args, env=env, timeout=300)
    assert run.rc == 0, run.err
    assert "Traceback" not in run.err
    finals = [e["text"] for e in map(json.loads, run.out.splitlines()) if e["type"] == "final"]
    assert finals == heard  # every final landed, as with no backend at all
    said = [line for line in run.err.splitlines() if "cleanup is off" in line]
    assert len(said) == 1, run.err  # said once, in one line, with why
    assert said[0].startswith("notetaker: cleanup is off: ") and "summarize --clean" in said[0]
    [session] = [json.loads(line) for line in cli("sessions", "--json").out.splitlines()]
    assert session["status"] == "complete"
    shown = cli("show", str(session["id"])).out
    for text in heard:
        assert text in shown


class _FailingLoad(Exception):
    pass


def test_the_live_screen_records_on_when_the_rewrite_backend_fails_to_load(tmp_path):
    """The TUI: the backend's factory throws; the meeting records, every final is shown and
    stored, and the status bar names the backend as failed, not as running."""
    store = SessionStore.open(tmp_path / "home" / "notetaker.db")
    calls = []

    def factory(name):
        calls.append(name)
        raise _FailingLoad("weights are damaged")

    deps = deps_for(store, tmp_path, rewrite_backend="mlx")
    deps.rewrite_factory = factory

    async def run():
        app = make_app(deps, live=True)
        async with app.run_test(size=(120, 30)) as pilot:
            screen = live(app)
            await wait_for(pilot, lambda: screen.state == "finished", timeout=30)
            status = screen.status_text()
            finals = shown_finals(screen)
            sid = screen.session_id
            await pilot.press("q")
        return status, finals, sid

    try:
        status, finals, sid = asyncio.run(run())
        assert calls == ["mlx"]  # loaded once, on the compute thread, after capture began
        assert "rewrite mlx ✖ failed" in status
        stored = [s.text for s in store.segments(sid)]
        assert len(stored) == len(finals) >= 3
        assert store.get_session(sid).status == "complete"
    finally:
        store.close()
