"""App-test helpers: generated audio, and the CLI run in a subprocess against a temporary home.

Nothing here may touch the real data home: every run gets NOTETAKER_HOME, HOME and
XDG_DATA_HOME under a temporary folder, and the hub is offline.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def write_wav(path: Path, seconds: float, rate: int = 16_000, freq: float = 440.0) -> Path:
    """A mono 16-bit tone (no sox needed)."""
    t = np.arange(int(round(seconds * rate))) / rate
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class CLI:
    """`notetaker …` in a fresh interpreter, with a private home and environment."""

    def __init__(self, base: Path, home: Path | None = None) -> None:
        self.base = base
        self.home = home or base / "home"
        (base / "user").mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("NOTETAKER_", "XDG_", "HF_", "PYTHON"))}
        self.env.update(PYTHONPATH=str(ROOT), NOTETAKER_HOME=str(self.home), HOME=str(base / "user"),
                        XDG_DATA_HOME=str(base / "user" / "xdg-data"), HF_HUB_OFFLINE="1",
                        HF_HOME=str(base / "user" / "hf"), PYTHONUNBUFFERED="1", NO_COLOR="1",
                        NOTETAKER_OPENAI_DETECT="off")  # the machine's own servers stay out of it

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
        p = subprocess.run([sys.executable, "-m", "notetaker", *map(str, args)], cwd=self.base,
                           env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout)
        return Run(p.returncode, p.stdout, p.stderr)

    @property
    def db_path(self) -> Path:
        return self.home / "notetaker.db"

    def session_rows(self) -> list[tuple]:
        """(id, status) of every session, read with plain sqlite3 (empty when there is no db)."""
        if not self.db_path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT id, status FROM sessions ORDER BY id").fetchall()
        finally:
            conn.close()


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture(autouse=True)
def _private_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process code sees a temporary user too, never the real one."""
    user = tmp_path_factory.mktemp("user")
    for key in list(os.environ):
        if key.startswith("NOTETAKER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NOTETAKER_OPENAI_DETECT", "off")
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("XDG_DATA_HOME", str(user / "xdg-data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


SEEDED = [(1, "complete")]


@pytest.fixture
def seeded(tmp_path: Path) -> CLI:
    """A home with one finished session, made without any engine."""
    from storage import SessionStore

    cli = CLI(tmp_path)
    cli.home.mkdir(mode=0o700)
    with SessionStore.open(cli.db_path) as store:
        sid = store.create_session("Planning", "whisper", "tiny.en")
        store.add_segment(sid, "We agreed on the budget.", 0.0, 2.0)
        store.add_segment(sid, "Sam writes it up.", 2.0, 4.0)
        store.finish_session(sid, "complete", duration_s=4.0)
    assert cli.session_rows() == SEEDED
    return cli
