"""`notetaker transcribe --engine voxtral` end to end on a tiny checkpoint folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ..audio_util import FIXTURES

ROOT = Path(__file__).resolve().parents[3]


def notetaker(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "notetaker", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_transcribe_streams_and_saves(voxtral_dirs):
    run = notetaker("transcribe", FIXTURES / "es01.flac", "--engine", "voxtral", "--model", voxtral_dirs["mlx"],
                    "--delay", "160", "--json")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[0]["type"] == "session" and events[0]["engine"] == "voxtral"
    finished = events[-1]
    assert finished["event"] == "finished" and finished["status"] == "complete"
    assert finished["finals"] == sum(e["type"] == "final" for e in events)
    show = notetaker("show", finished["id"], "--json")
    assert json.loads(show.stdout)["session"]["delay_ms"] == 160


def test_a_delay_off_the_80_ms_grid_is_one_line(voxtral_dirs):
    run = notetaker("transcribe", FIXTURES / "es01.flac", "--engine", "voxtral", "--model", voxtral_dirs["mlx"],
                    "--delay", "100")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "multiple of 80 ms" in run.stderr
