"""Speaker labels of a meeting (segments.speaker: S1, S2, ...) and the names people give them.

A diarizer labels segments; a person names labels (`S2` → `Anya`) and merges two labels that
are one person. What a segment shows is the name where there is one, else the label. The mic
and system channels of a call are a prior: a label never spans both unless a person merges
them (`across_channels`), so neither a relabel nor a merge made by a program can join them.

The functions here take an open connection inside the store's write transaction; the store
exposes them as methods (`SessionStore.speakers`, `rename_speaker`, ...).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from storage.errors import StoreError
from storage.records import SegmentRecord

MAX_NAME = 60  # a person's name on one line, not a paragraph
MAX_LABEL = 32
NO_NAMES: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class SpeakerRecord:
    """One label of a meeting: its name (None: unnamed), how many segments it has, how long
    it talks (the sum of its segments' lengths) and the channels it was heard on."""

    label: str
    name: str | None
    segments: int
    talk_s: float
    channels: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        return self.name or self.label


class SpeakerNotFound(StoreError):
    def __init__(self, session_id: int, label: str) -> None:
        super().__init__(f"no speaker {label!r} in meeting {session_id}; `notetaker speakers {session_id}` lists them")


# ---------------------------------------------------------------- how a segment's speaker reads


def shown_speaker(label: str | None, names: Mapping[str, str]) -> str:
    """The name given to a label, else the label itself ("" for no label)."""
    if not label:
        return ""
    return names.get(label) or label


def voice(segment: SegmentRecord, names: Mapping[str, str] = NO_NAMES) -> str:
    """Who a segment is heard from, as every transcript shows it: `Anya (system)` with both a
    speaker and a channel, else whichever there is (`Anya`, `mic`), else ""."""
    who = shown_speaker(segment.speaker, names)
    if who and segment.channel:
        return f"{who} ({segment.channel})"
    return who or segment.channel or ""


def check_label(label: object) -> str:
    if not isinstance(label, str) or not label or label != label.strip() or len(label) > MAX_LABEL \
            or any(ch.isspace() or not ch.isprintable() for ch in label):
        raise StoreError(f"{str(label)[:40]!r} is not a speaker label (a short word such as S2)")
    return label


def check_name(name: str | None) -> str | None:
    """A name stripped to one line; None (the label shows again) for an empty one."""
    text = " ".join((name or "").split())
    if not text:
        return None
    if len(text) > MAX_NAME:
        raise StoreError(f"a speaker's name is at most {MAX_NAME} characters")
    if not text.isprintable():
        raise StoreError(f"{text[:40]!r} has characters a name cannot have")
    return text


# ---------------------------------------------------------------- reads


def speakers(conn: sqlite3.Connection, session_id: int) -> list[SpeakerRecord]:
    """Every label of a meeting (on a segment or named), in order of first appearance;
    named labels that no segment has any more come last."""
    rows = conn.execute(
        "SELECT speaker, COUNT(*), SUM(MAX(end_s - start_s, 0)), MIN(seq),"
        " GROUP_CONCAT(DISTINCT channel) FROM segments"
        " WHERE session_id = ? AND speaker IS NOT NULL GROUP BY speaker",
        (session_id,),
    ).fetchall()
    names = dict(conn.execute("SELECT label, name FROM speakers WHERE session_id = ?", (session_id,)).fetchall())
    heard = {label: (n, float(talk or 0.0), first, tuple(sorted((chans or "").split(",")) if chans else ()))
             for label, n, talk, first, chans in rows}
    out = [SpeakerRecord(label, names.get(label), n, talk, chans)
           for label, (n, talk, _, chans) in sorted(heard.items(), key=lambda kv: kv[1][2])]
    out += [SpeakerRecord(label, name, 0, 0.0) for label, name in sorted(names.items()) if label not in heard]
    return out


def names(conn: sqlite3.Connection, session_id: int) -> dict[str, str]:
    """{label: name} for the named labels of a meeting."""
    return dict(conn.execute(
        "SELECT label, name FROM speakers WHERE session_id = ? AND name IS NOT NULL", (session_id,)
    ).fetchall())


def _known(conn: sqlite3.Connection, session_id: int, label: str) -> bool:
    return bool(conn.execute(
        "SELECT 1 FROM segments WHERE session_id = ?1 AND speaker = ?2"
        " UNION ALL SELECT 1 FROM speakers WHERE session_id = ?1 AND label = ?2 LIMIT 1",
        (session_id, label),
    ).fetchall())


def _channels(conn: sqlite3.Connection, session_id: int, labels: Sequence[str]) -> list[str]:
    """The distinct channels the segments of these labels were heard on."""
    marks = ",".join("?" * len(labels))
    rows = conn.execute(
        f"SELECT DISTINCT channel FROM segments WHERE session_id = ? AND speaker IN ({marks})"
        " AND channel IS NOT NULL ORDER BY channel",
        (session_id, *labels),
    ).fetchall()
    return [r[0] for r in rows]


# ---------------------------------------------------------------- writes


def relabel(conn: sqlite3.Connection, session_id: int, labels: Mapping[int, str | None],
            across_channels: bool = False) -> int:
    """Set the label of segments by their number (seq; None: unknown speaker); how many
    changed. Refused (nothing written, by the caller's transaction) when a number is not in
    the meeting, or when a label would span the mic and system channels."""
    wanted = {int(seq): (check_label(label) if label is not None else None) for seq, label in labels.items()}
    changed = 0
    for seq, label in wanted.items():
        cur = conn.execute("UPDATE segments SET speaker = ? WHERE session_id = ? AND seq = ?", (label, session_id, seq))
        if cur.rowcount == 0:
            raise StoreError(f"no segment #{seq} in meeting {session_id}")
        changed += cur.rowcount
    new = sorted({label for label in wanted.values() if label is not None})
    if not across_channels:
        for label in new:
            _same_channel(conn, session_id, [label])
    conn.executemany("INSERT OR IGNORE INTO speakers (session_id, label) VALUES (?, ?)",
                     [(session_id, label) for label in new])
    # An unnamed label no segment has any more is gone; a named one keeps its name.
    conn.execute("DELETE FROM speakers WHERE session_id = ?1 AND name IS NULL AND label NOT IN"
                 " (SELECT speaker FROM segments WHERE session_id = ?1 AND speaker IS NOT NULL)", (session_id,))
    return changed


def labels_from_spans(segments: Sequence[SegmentRecord], spans: Sequence[tuple[float, float, str]],
                      channel: str | None = None) -> dict[int, str]:
    """{seq: label}: each segment (of `channel` only, when given) takes the label of the spans
    that overlap it most; a segment no span overlaps is left out (it keeps its label)."""
    out: dict[int, str] = {}
    for seg in segments:
        if channel is not None and seg.channel != channel:
            continue
        overlap: dict[str, float] = {}
        for start, end, label in spans:
            o = min(seg.end_s, end) - max(seg.start_s, start)
            if o > 0:
                overlap[label] = overlap.get(label, 0.0) + o
        if overlap:
            out[seg.seq] = max(sorted(overlap), key=lambda lab: overlap[lab])
    return out


def rename(conn: sqlite3.Connection, session_id: int, label: str, name: str | None) -> str | None:
    """Name a label (an empty name clears it); the name kept. One name names one label in a
    meeting: two labels that are one person are merged, not given the same name."""
    if not _known(conn, session_id, label):
        raise SpeakerNotFound(session_id, label)
    name = check_name(name)
    if name is not None:
        clash = conn.execute(
            "SELECT label, name FROM speakers WHERE session_id = ? AND label != ? AND name = ? COLLATE NOCASE",
            (session_id, label, name),
        ).fetchall()
        if clash:
            other, taken = clash[0]
            raise StoreError(f"{taken} already names {other} in meeting {session_id}; if {label} is the same "
                             f"person, merge them ({label}={other})")
        if name != label and _known(conn, session_id, name):
            raise StoreError(f"{name} is another speaker's label in meeting {session_id}; choose another name")
    conn.execute("INSERT INTO speakers (session_id, label, name) VALUES (?, ?, ?)"
                 " ON CONFLICT (session_id, label) DO UPDATE SET name = excluded.name", (session_id, label, name))
    return name


def merge(conn: sqlite3.Connection, session_id: int, source: str, target: str,
          across_channels: bool = False) -> int:
    """`source`'s segments become `target`'s and `source` is gone; `target` keeps its name, or
    takes `source`'s when it has none. Labels heard on different channels (mic, system) are
    merged only when a person asks (`across_channels`). How many segments moved."""
    for label in (source, target):
        if not _known(conn, session_id, label):
            raise SpeakerNotFound(session_id, label)
    if source == target:
        raise StoreError(f"{source} cannot be merged into itself")
    if not across_channels:
        _same_channel(conn, session_id, [source, target])
    given = dict(conn.execute("SELECT label, name FROM speakers WHERE session_id = ? AND label IN (?, ?)",
                              (session_id, source, target)).fetchall())
    name = given.get(target) or given.get(source)
    moved = conn.execute("UPDATE segments SET speaker = ? WHERE session_id = ? AND speaker = ?",
                         (target, session_id, source)).rowcount
    conn.execute("DELETE FROM speakers WHERE session_id = ? AND label = ?", (session_id, source))
    conn.execute("INSERT INTO speakers (session_id, label, name) VALUES (?, ?, ?)"
                 " ON CONFLICT (session_id, label) DO UPDATE SET name = excluded.name", (session_id, target, name))
    return moved


def _same_channel(conn: sqlite3.Connection, session_id: int, labels: list[str]) -> None:
    channels = _channels(conn, session_id, labels)
    if len(channels) > 1:
        who = " and ".join(labels)
        raise StoreError(f"{who} would be heard on both {' and '.join(channels)}: the two sides of a call are "
                         "different people unless you merge them yourself")
