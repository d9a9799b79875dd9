"""Corrections benchmark: find-and-replace preview, apply and undo beside search and the
recorder's insert, on the same synthetic meetings as bench/storage.py.

    python bench/edits.py [--meetings 100] [--seed 7]

A preview scans a meeting's shown text in Python (the TUI runs one per keystroke), across
every meeting for `--all-meetings`; it is set beside a search of the same scope (FTS5).
Applying writes one logged edit per changed segment in one transaction; it is set beside
add_segment, one transaction per final. Printed side by side, with ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/storage.py would shadow the storage package otherwise

from storage import SessionStore, open_db  # noqa: E402


def _bench_storage():
    """bench/storage.py's meeting generator, loaded by path (its name clashes with the package)."""
    spec = importlib.util.spec_from_file_location("bench_storage", ROOT / "bench" / "storage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed_ms(run: Callable[[], object], repeat: int = 5) -> tuple[float, object]:
    """Median milliseconds of `repeat` runs, and the last run's result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meetings", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    gen = _bench_storage()
    rng = random.Random(args.seed)
    store = SessionStore(open_db(None))
    built = gen.insert_batched(store, gen.TextModel.build(rng), rng, args.meetings)
    sid = store.list_sessions(limit=1)[0].id
    n_meeting = len(store.segments(sid))
    print(f"{args.meetings} one-hour meetings, {built.segments:,} segments; one meeting: {n_meeting} segments\n")

    find, new = "budget", "spending plan"
    one_ms, changes = timed_ms(lambda: store.preview_replace(find, new, sid))
    one_search_ms, _ = timed_ms(lambda: store.search(find, limit=20, session_id=sid))
    all_ms, every = timed_ms(lambda: store.preview_replace(find, new, None), repeat=3)
    all_search_ms, _ = timed_ms(lambda: store.search(find, limit=20), repeat=3)

    t0 = time.perf_counter()
    applied = store.apply_changes(changes)
    apply_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    undone = store.undo_last_edit(sid)
    undo_ms = (time.perf_counter() - t0) * 1000
    assert len(applied) == len(undone) == len(changes)

    scratch = store.create_session("insert timing", "bench", "none")
    rows = [(f"final number {i} about the budget", i * 5.0, i * 5.0 + 4.0) for i in range(300)]
    t0 = time.perf_counter()
    for text, start, end in rows:
        store.add_segment(scratch, text, start, end)
    insert_ms = (time.perf_counter() - t0) * 1000 / len(rows)
    per_change = apply_ms / max(1, len(applied))

    def row(label: str, ours: float, theirs: float, what: str) -> None:
        print(f"{label:<40}{ours:>10.2f} ms {theirs:>10.2f} ms {ours / theirs:>8.1f}x  ({what})")

    print(f"{'':<40}{'ours':>13} {'beside':>13} {'ratio':>9}")
    row(f"preview, one meeting ({len(changes)} changes)", one_ms, one_search_ms, "search in one meeting")
    row(f"preview, all meetings ({len(every):,} changes)", all_ms, all_search_ms, "search everywhere, top 20")
    row("apply, per changed segment", per_change, insert_ms, "add_segment per final")
    row(f"undo of that replace ({len(undone)} segments)", undo_ms, apply_ms, "its apply")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
