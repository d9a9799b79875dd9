"""Every bad input a user can type is one line on stderr and exit 2, never a traceback,
and changes nothing already saved: ids and limits past SQLite's 64 bits, files that are
devices, FIFOs or huge, JSON with enormous numbers or absurd nesting, text that is not
UTF-8, a clock speed that never ends, a memory budget nothing fits in."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

HUGE = "99999999999999999999"


def one_line_exit_2(run, *needles: str) -> None:
    assert run.rc == 2, (run.rc, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.err, run.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def saved(cli) -> list[tuple]:
    return cli.session_rows()


@pytest.mark.parametrize("args", [
    ("show", HUGE), ("export", HUGE, "-f", "md"), ("summarize", HUGE), ("recover", HUGE),
    ("sessions", "--limit", HUGE), ("search", "budget", "--limit", HUGE), ("search", "budget", "--session", HUGE),
])  # fmt: skip
def test_numbers_past_64_bits(seeded, args):
    before = saved(seeded)
    one_line_exit_2(seeded(*args), "too large")
    assert saved(seeded) == before


def _export(seeded, tmp_path: Path) -> dict:
    r = seeded("export", "1", "-f", "json", "-o", tmp_path / "one.json")
    assert r.rc == 0, r.err
    return json.loads((tmp_path / "one.json").read_text())


@pytest.mark.parametrize("case", ["huge-id", "huge-float", "digits", "deep"])
def test_import_of_absurd_json(seeded, tmp_path, case):
    path = tmp_path / f"{case}.json"
    if case in ("huge-id", "huge-float"):
        data = _export(seeded, tmp_path)
        if case == "huge-id":
            data["session"]["delay_ms"] = 10**30
        else:
            data["segments"][0]["start_s"] = 10**400
        path.write_text(json.dumps(data))
    elif case == "digits":
        path.write_text("9" * 5000)
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    before = saved(seeded)
    one_line_exit_2(seeded("import", path))
    assert saved(seeded) == before


def _special(tmp_path: Path, kind: str) -> Path:
    if kind == "dev-zero":
        return Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "pipe.json"
        os.mkfifo(path)  # nobody ever writes: reading it would hang
        return path
    if kind == "folder":
        return tmp_path
    path = tmp_path / "huge.json"  # 2 GB, sparse: costs no disk
    with open(path, "wb") as f:
        f.truncate(2 << 30)
    return path


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder", "2gb"])
@pytest.mark.parametrize("command", ["import", "template"])
def test_files_that_are_not_small_regular_files(seeded, tmp_path, kind, command):
    path = _special(tmp_path, kind)
    args = ("import", path) if command == "import" else ("summarize", "1", "--template", path)
    before = saved(seeded)
    one_line_exit_2(seeded(*args, timeout=30), "cannot read")
    assert saved(seeded) == before


def test_text_that_is_not_utf8(seeded, tmp_path):
    bad = os.fsdecode(b"Standup \xff\xfe")  # what a shell hands over for those bytes
    one_line_exit_2(seeded("transcribe", "--sample", "--title", bad), "not valid UTF-8")
    one_line_exit_2(seeded("search", bad), "not valid UTF-8")
    assert saved(seeded) == [(1, "complete")]


@pytest.mark.parametrize("speed", ["1e-300", "0", "-1", "nan", "1e9"])
def test_a_clock_speed_that_never_ends_is_refused_before_a_meeting_exists(seeded, speed):
    one_line_exit_2(seeded("transcribe", "--sample", "--realtime", "--speed", speed), "--speed")
    assert saved(seeded) == [(1, "complete")]


def test_a_memory_budget_nothing_fits_in(seeded):
    (seeded.home / "config.toml").write_text("memory_budget_gb = 0.001\n")
    one_line_exit_2(seeded("transcribe", "--sample"), "memory_budget_gb")
    assert saved(seeded) == [(1, "complete")]
    doctor = seeded("doctor")
    assert "even the bundled tiny.en needs" in doctor.out and "None" not in doctor.out
