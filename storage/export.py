"""Pure functions from records to text: Markdown (Obsidian-friendly), JSON, SRT, VTT, TXT.

Every format numbers the segments as summaries cite them: `#3` is the meeting's third
segment (`seq`), in the transcript line, the SRT cue number and the VTT cue id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from storage.citations import cited, ids_to_numbers, renumber
from storage.errors import StoreError
from storage.speakers import NO_NAMES, check_label, check_name, voice
from storage.records import (
    MARK_KINDS,
    STATUSES,
    Citation,
    MarkRecord,
    NoteRecord,
    SegmentRecord,
    SessionRecord,
    SummaryRecord,
    parse_iso,
    to_iso,
)

EXPORT_FORMAT = "notetaker.session"
# 2: summary citations are segment numbers (seq), under "seqs"; 1 cited segment ids.
EXPORT_VERSION = 2


# ---------------------------------------------------------------- time stamps


def _split(t: float) -> tuple[int, int, int, int]:
    ms = max(0, round(t * 1000)) if math.isfinite(t) else 0
    return ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000


def clock(t: float, tenths: bool = False) -> str:
    """HH:MM:SS, rounded down: a line says the second its speech began; `tenths`:
    HH:MM:SS.t, to the nearest tenth (59.96 s is 00:01:00.0)."""
    t = t if math.isfinite(t) and t > 0 else 0.0
    if tenths:
        d = round(t * 10)
        return f"{d // 36000:02d}:{d // 600 % 60:02d}:{d // 10 % 60:02d}.{d % 10}"
    whole = math.floor(t)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def srt_time(t: float) -> str:
    h, m, s, ms = _split(t)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def vtt_time(t: float) -> str:
    h, m, s, ms = _split(t)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def line_head(segment: SegmentRecord) -> str:
    """`[#3 00:01:23]`: the number a summary cites it by, and when it began."""
    return f"[#{segment.seq} {clock(segment.start_s)}]"


def turn_voices(items: Sequence[SegmentRecord | MarkRecord], names: Mapping[str, str]) -> list[str]:
    """Who each item is said by as a transcript line shows it: a segment that goes on the
    turn of a labelled speaker (the segment before it, with no mark between, has the same
    speaker) shows "", so consecutive segments of one speaker read as one turn. Segments
    without a speaker label show their channel on every line, as before labels existed."""
    out, previous = [], None
    for item in items:
        if isinstance(item, MarkRecord):
            out.append("")
            previous = None
            continue
        who = voice(item, names)
        same = item.speaker is not None and previous is not None and previous == (item.speaker, item.channel)
        out.append("" if same else who)
        previous = (item.speaker, item.channel)
    return out


def with_marks(
    segments: Sequence[SegmentRecord], marks: Sequence[MarkRecord]
) -> list[SegmentRecord | MarkRecord]:
    """The segments in their order, each mark placed before the first segment that starts
    after it (as the meeting's screens show them); marks after the last segment end the list."""
    pending = sorted(marks, key=lambda m: (m.t_s, m.id))
    out: list[SegmentRecord | MarkRecord] = []
    for seg in segments:
        while pending and pending[0].t_s < seg.start_s:
            out.append(pending.pop(0))
        out.append(seg)
    return out + pending


def mark_line(mark: MarkRecord) -> str:
    """`▸ [00:01:23] Decision: text`: a mark on a line of its own, between the segments."""
    text = f": {_one_line(mark.text)}" if mark.text.strip() else ""
    return f"▸ [{clock(mark.t_s)}] {mark.kind.capitalize()}{text}"


# ---------------------------------------------------------------- markdown


def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar; escapes whatever YAML does not allow raw."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif (
            code < 0x20
            or 0x7F <= code <= 0x9F
            or 0xD800 <= code <= 0xDFFF
            or code
            in (
                0x2028,
                0x2029,
                0xFEFF,
                0xFFFE,
                0xFFFF,
            )
        ):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# Characters that would turn transcript words into Markdown or Obsidian syntax
# (emphasis, links, [[wikilinks]], #tags, $math$, ~~strike~~, HTML).
_MD_SPECIAL = set("\\`*_[]<#$~")


def md_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in _one_line(text))


def _duration(session: SessionRecord, segments: Sequence[SegmentRecord]) -> float | None:
    if session.duration_s is not None:
        return session.duration_s
    if session.ended_at is not None:
        return max(0.0, (session.ended_at - session.started_at).total_seconds())
    return max((s.end_s for s in segments), default=None)


def _title(session: SessionRecord) -> str:
    title = _one_line(session.title)
    return title or f"Meeting {session.started_at:%Y-%m-%d %H:%M} UTC"


def front_matter(session: SessionRecord, segments: Sequence[SegmentRecord] = ()) -> str:
    lines = ["---", f"title: {yaml_str(_title(session))}", f"date: {to_iso(session.started_at)}"]
    duration = _duration(session, segments)
    if duration is not None:
        lines.append(f"duration: {yaml_str(clock(duration))}")
    for key in ("engine", "model", "language"):
        value = getattr(session, key)
        if value:
            lines.append(f"{key}: {yaml_str(value)}")
    lines.append(f"status: {yaml_str(session.status)}")
    lines.append("tags: [meeting]")
    lines.append("---")
    return "\n".join(lines)


def to_markdown(
    session: SessionRecord,
    segments: Sequence[SegmentRecord],
    marks: Sequence[MarkRecord] = (),
    summary: SummaryRecord | None = None,
    *,
    notes: Sequence[NoteRecord] = (),
    speakers: Mapping[str, str] = NO_NAMES,
) -> str:
    """`speakers`: {label: name} of the meeting (named labels show their name)."""
    parts = [front_matter(session, segments), "", f"# {md_escape(_title(session))}", ""]
    if summary is not None and summary.markdown.strip():
        parts += ["## Summary", "", summary.markdown.strip(), ""]
    if notes:
        parts += ["## Notes", ""]
        # The person wrote these in Markdown: kept as written, one line each.
        parts += [f"- **[{clock(n.t_s)}]** {_one_line(n.text)}" for n in notes]
        parts.append("")
    parts += ["## Transcript", ""]
    items = with_marks(segments, marks)
    for item, label in zip(items, turn_voices(items, speakers)):
        if isinstance(item, MarkRecord):  # a quote line of its own: it reads apart from speech
            text = f": {md_escape(item.text)}" if item.text.strip() else ""
            parts += [f"> **▸ [{clock(item.t_s)}] {item.kind.capitalize()}**{text}", ""]
            continue
        who = f"**{md_escape(label)}:** " if label else ""
        parts += [f"**{line_head(item)}** {who}{md_escape(item.display_text)}", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


# ---------------------------------------------------------------- subtitles and text


def _said(label: str, text: str) -> str:
    text = _one_line(text)
    return f"{label}: {text}" if label else text


def to_srt(
    session: SessionRecord,
    segments: Sequence[SegmentRecord],
    marks: Sequence[MarkRecord] = (),
    summary: SummaryRecord | None = None,
    *,
    speakers: Mapping[str, str] = NO_NAMES,
) -> str:
    """Each cue names its speaker as `Anya: text`: SubRip has no voice tag (players show
    `<v …>` as text or drop it), so the name goes in the text, as subtitles write it."""
    cues = []
    for seg in segments:  # the cue number is the segment's number: what a summary cites
        end = max(seg.end_s, seg.start_s)
        text = _said(voice(seg, speakers), seg.spoken_text)
        cues.append(f"{seg.seq}\n{srt_time(seg.start_s)} --> {srt_time(end)}\n{text}\n")
    return "\n".join(cues)


def _vtt_escape(text: str) -> str:
    # Escaping ">" also keeps a spoken "-->" from being read as a cue timing line.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(
    session: SessionRecord,
    segments: Sequence[SegmentRecord],
    marks: Sequence[MarkRecord] = (),
    summary: SummaryRecord | None = None,
    *,
    speakers: Mapping[str, str] = NO_NAMES,
) -> str:
    """Each cue names its speaker in a voice tag, `<v Anya>`."""
    parts = ["WEBVTT", ""]
    for seg in segments:
        end = max(seg.end_s, seg.start_s)
        label = voice(seg, speakers)
        text = _vtt_escape(_one_line(seg.spoken_text))
        tag = f"<v {_vtt_escape(label)}>" if label else ""
        parts += [str(seg.seq), f"{vtt_time(seg.start_s)} --> {vtt_time(end)}", tag + text, ""]
    return "\n".join(parts)


def to_txt(
    session: SessionRecord,
    segments: Sequence[SegmentRecord],
    marks: Sequence[MarkRecord] = (),
    summary: SummaryRecord | None = None,
    *,
    speakers: Mapping[str, str] = NO_NAMES,
) -> str:
    """One line per segment, each mark on a line of its own at its moment (`▸ [time] Kind: text`);
    a speaker's name starts their turn, as in Markdown."""
    items = with_marks(segments, marks)
    return "".join(
        f"{mark_line(item)}\n" if isinstance(item, MarkRecord) else f"{line_head(item)} {_said(label, item.spoken_text)}\n"
        for item, label in zip(items, turn_voices(items, speakers))
    )


# ---------------------------------------------------------------- JSON


def session_dict(
    session: SessionRecord,
    segments: Sequence[SegmentRecord],
    marks: Sequence[MarkRecord] = (),
    summaries: Sequence[SummaryRecord] = (),
    *,
    notes: Sequence[NoteRecord] = (),
    speakers: Mapping[str, str] = NO_NAMES,
) -> dict[str, Any]:
    """Everything about one session as JSON-ready data (what `export_json` returns). Each
    segment has its speaker label; `speakers` maps the named labels to their names (left out
    when none is named, so exports from before names read the same)."""
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "session": {
            "id": session.id,
            "title": session.title,
            "started_at": to_iso(session.started_at),
            "ended_at": to_iso(session.ended_at) if session.ended_at else None,
            "status": session.status,
            "engine": session.engine,
            "model": session.model,
            "language": session.language,
            "delay_ms": session.delay_ms,
            "audio_path": session.audio_path,
            "duration_s": session.duration_s,
        },
        "segments": [
            {
                "id": s.id,
                "seq": s.seq,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "text": s.text,
                "clean_text": s.clean_text,
                "edited_text": s.edited_text,
                "edited": s.edited,
                "channel": s.channel,
                "speaker": s.speaker,
                "flags": list(s.flags),
            }
            for s in segments
        ],
        "marks": [{"id": m.id, "t_s": m.t_s, "kind": m.kind, "text": m.text} for m in marks],
        "notes": [{"id": n.id, "t_s": n.t_s, "text": n.text, "created_at": to_iso(n.created_at)} for n in notes],
        "summaries": [
            {
                "id": s.id,
                "backend": s.backend,
                "model": s.model,
                "created_at": to_iso(s.created_at),
                "markdown": s.markdown,
                "citations": [{"bullet": c.bullet, "seqs": list(c.seqs)} for c in s.citations],
            }
            for s in summaries
        ],
    }
    if speakers:
        data["speakers"] = dict(sorted(speakers.items()))
    return data


def to_json(
    session: SessionRecord,
    segments: Sequence[SegmentRecord],
    marks: Sequence[MarkRecord] = (),
    summary: SummaryRecord | None = None,
    *,
    summaries: Sequence[SummaryRecord] | None = None,
    notes: Sequence[NoteRecord] = (),
    speakers: Mapping[str, str] = NO_NAMES,
) -> str:
    """Pretty UTF-8 JSON; pass `summaries` to include every summary, not just `summary`."""
    chosen = summaries if summaries is not None else ([summary] if summary else [])
    data = session_dict(session, segments, marks, chosen, notes=notes, speakers=speakers)
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


@dataclass(frozen=True)
class ParsedSession:
    """An export read back; ids are the exporter's. Citations are segment numbers (seq),
    whatever the export's version."""

    session: SessionRecord
    segments: tuple[SegmentRecord, ...]
    marks: tuple[MarkRecord, ...]
    summaries: tuple[SummaryRecord, ...]
    notes: tuple[NoteRecord, ...] = ()
    speakers: Mapping[str, str] = field(default_factory=dict)  # {label: name}


def parse_session_dict(data: Any) -> ParsedSession:
    """Validate an export (from `session_dict`); StoreError names the first thing wrong."""
    if not isinstance(data, Mapping):
        raise StoreError("not a notetaker export: expected a JSON object")
    if data.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise StoreError(f"not a notetaker export: format is {str(data.get('format'))[:40]!r}")
    version = data.get("version", EXPORT_VERSION)
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise StoreError(f"this export is version {version!r}; this notetaker reads up to {EXPORT_VERSION}")
    s = _mapping(data.get("session"), "session")
    status = _opt_str(s, "status", "session") or "complete"
    if status not in STATUSES:
        raise StoreError(f"bad export: session status {status[:20]!r} is not one of {', '.join(STATUSES)}")
    session = SessionRecord(
        id=_opt_int(s, "id", "session") or 0,
        title=_opt_str(s, "title", "session") or "",
        started_at=_time(s.get("started_at"), "session started_at"),
        ended_at=_time(s["ended_at"], "session ended_at") if s.get("ended_at") else None,
        status=status,
        engine=_opt_str(s, "engine", "session"),
        model=_opt_str(s, "model", "session"),
        language=_opt_str(s, "language", "session"),
        delay_ms=_opt_int(s, "delay_ms", "session"),
        audio_path=_opt_str(s, "audio_path", "session"),
        duration_s=_opt_float(s, "duration_s", "session"),
    )
    segments = tuple(_segment(x, n) for n, x in enumerate(_list(data, "segments"), 1))
    seqs = [seg.seq for seg in segments]
    if len(set(seqs)) != len(seqs):
        raise StoreError("bad export: two segments share a seq number")
    marks = tuple(_mark(x, n) for n, x in enumerate(_list(data, "marks"), 1))
    summaries = tuple(_summary(x, n, version) for n, x in enumerate(_list(data, "summaries"), 1))
    if version < 2:  # cited the exporter's segment ids
        number = {seg.id: seg.seq for seg in segments}
        summaries = tuple(_by_number(s, number) for s in summaries)
    else:  # a number no segment has (a hand-edited file) is dropped, as a checked summary would
        summaries = tuple(_known_numbers(s, set(seqs)) for s in summaries)
    # Absent in exports from before notes; a note without its created time gets the meeting's start.
    notes = tuple(_note(x, n, session.started_at) for n, x in enumerate(_list(data, "notes"), 1))
    return ParsedSession(session, segments, marks, summaries, notes, _speakers(data.get("speakers")))


def _speakers(raw: Any) -> dict[str, str]:
    """{label: name} as exported (absent before names); one name names one label."""
    if raw is None:
        return {}
    out = {}
    for label, name in _mapping(raw, "speakers").items():
        where = f"bad export: speaker {str(label)[:20]!r}"
        if name is not None and not isinstance(name, str):
            raise StoreError(f"{where}: its name must be text")
        try:
            label, name = check_label(label), check_name(name)
        except StoreError as e:
            raise StoreError(f"{where}: {e}") from None
        if name is not None:
            out[label] = name
    if len({n.casefold() for n in out.values()}) != len(out):
        raise StoreError("bad export: two speakers share a name")
    return out


def _by_number(summary: SummaryRecord, number: Mapping[int, int]) -> SummaryRecord:
    markdown, citations = ids_to_numbers(summary.markdown, summary.citations, number)
    return replace(summary, markdown=markdown, citations=citations)


def _known_numbers(summary: SummaryRecord, seqs: set[int]) -> SummaryRecord:
    if all(lo in seqs and hi in seqs for lo, hi in cited(summary.markdown)) and all(
        n in seqs for c in summary.citations for n in c.seqs
    ):
        return summary
    return replace(
        summary,
        markdown=renumber(summary.markdown, {n: n for n in seqs})[0],
        citations=tuple(Citation(c.bullet, tuple(n for n in c.seqs if n in seqs)) for c in summary.citations),
    )


def _segment(raw: Any, n: int) -> SegmentRecord:
    where = f"segment {n}"
    x = _mapping(raw, where)
    text = x.get("text")
    if not isinstance(text, str):
        raise StoreError(f"bad export: {where} has no text")
    flags = x.get("flags") or []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise StoreError(f"bad export: {where} flags must be a list of strings")
    seq = _opt_int(x, "seq", where)
    return SegmentRecord(
        id=_opt_int(x, "id", where) or 0,
        session_id=0,
        seq=n if seq is None else seq,
        start_s=_req_float(x, "start_s", where),
        end_s=_req_float(x, "end_s", where),
        text=text,
        channel=_opt_str(x, "channel", where),
        speaker=_opt_str(x, "speaker", where),
        flags=tuple(flags),
        clean_text=_opt_str(x, "clean_text", where),
        edited_text=_opt_str(x, "edited_text", where),  # "edited" is derived from it
    )


def _mark(raw: Any, n: int) -> MarkRecord:
    where = f"mark {n}"
    x = _mapping(raw, where)
    kind = _opt_str(x, "kind", where)
    if kind not in MARK_KINDS:
        raise StoreError(f"bad export: {where} kind must be one of {', '.join(MARK_KINDS)}")
    return MarkRecord(
        id=_opt_int(x, "id", where) or 0,
        session_id=0,
        t_s=_req_float(x, "t_s", where),
        kind=kind,
        text=_opt_str(x, "text", where) or "",
    )


def _note(raw: Any, n: int, started_at: datetime) -> NoteRecord:
    where = f"note {n}"
    x = _mapping(raw, where)
    text = x.get("text")
    if not isinstance(text, str):
        raise StoreError(f"bad export: {where} has no text")
    return NoteRecord(
        id=_opt_int(x, "id", where) or 0,
        session_id=0,
        t_s=_req_float(x, "t_s", where),
        text=text,
        created_at=_time(x["created_at"], f"{where} created_at") if x.get("created_at") else started_at,
    )


def _summary(raw: Any, n: int, version: int = EXPORT_VERSION) -> SummaryRecord:
    where = f"summary {n}"
    x = _mapping(raw, where)
    markdown = x.get("markdown")
    if not isinstance(markdown, str):
        raise StoreError(f"bad export: {where} has no markdown")
    return SummaryRecord(
        id=_opt_int(x, "id", where) or 0,
        session_id=0,
        backend=_opt_str(x, "backend", where),
        model=_opt_str(x, "model", where),
        created_at=_time(x.get("created_at"), f"{where} created_at"),
        markdown=markdown,
        citations=parse_citations(x.get("citations") or [], where, "seqs" if version >= 2 else "segment_ids"),
    )


def parse_citations(raw: Any, where: str = "summary", key: str = "seqs") -> tuple[Citation, ...]:
    """Citations from Citation objects or {"bullet", "seqs"} mappings (`key`: "segment_ids"
    in a version-1 export, read into `seqs` for the caller to map)."""
    if not isinstance(raw, (list, tuple)):
        raise StoreError(f"bad {where}: citations must be a list")
    out = []
    for item in raw:
        if isinstance(item, Citation):
            out.append(item)
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("bullet"), str):
            raise StoreError(f"bad {where}: each citation needs a bullet")
        ids = item.get(key) or []
        if not isinstance(ids, (list, tuple)) or not all(_is_int(i) for i in ids):
            raise StoreError(f"bad {where}: citation {key} must be whole numbers")
        out.append(Citation(item["bullet"], tuple(int(i) for i in ids)))
    return tuple(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise StoreError(f"bad export: {where} must be an object")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise StoreError(f"bad export: {key} must be a list")
    return value


def _opt_str(x: Mapping[str, Any], key: str, where: str) -> str | None:
    value = x.get(key)
    if value is not None and not isinstance(value, str):
        raise StoreError(f"bad export: {where} {key} must be text")
    return value


def _opt_int(x: Mapping[str, Any], key: str, where: str) -> int | None:
    value = x.get(key)
    if value is not None and not _is_int(value):
        raise StoreError(f"bad export: {where} {key} must be a whole number")
    if value is not None and not -(2**63) <= value < 2**63:  # SQLite's integers are 64-bit
        raise StoreError(f"bad export: {where} {key} is out of range")
    return value


def _opt_float(x: Mapping[str, Any], key: str, where: str) -> float | None:
    value = x.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(min(value, 1e300)):
        raise StoreError(f"bad export: {where} {key} must be a number")
    if abs(value) > 1e12:  # seconds: no meeting lasts 30,000 years
        raise StoreError(f"bad export: {where} {key} is out of range")
    return float(value)


def _req_float(x: Mapping[str, Any], key: str, where: str) -> float:
    value = _opt_float(x, key, where)
    if value is None:
        raise StoreError(f"bad export: {where} has no {key}")
    return value


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise StoreError(f"bad export: {where} is missing")
    try:
        return parse_iso(value)
    except ValueError:
        raise StoreError(f"bad export: {where} {value[:40]!r} is not an ISO-8601 time") from None


# ---------------------------------------------------------------- registry

Renderer = Callable[..., str]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    render: Renderer  # (session, segments, marks=(), summary=None) -> str
    extension: str
    description: str


FORMATS: dict[str, ExportFormat] = {
    "md": ExportFormat("md", to_markdown, "md", "Markdown with YAML front matter (Obsidian)"),
    "json": ExportFormat("json", to_json, "json", "everything, for import_json"),
    "srt": ExportFormat("srt", to_srt, "srt", "SubRip subtitles"),
    "vtt": ExportFormat("vtt", to_vtt, "vtt", "WebVTT subtitles"),
    "txt": ExportFormat("txt", to_txt, "txt", "plain text, one line per segment, marks between them"),
}


def render(
    fmt: str,
    session: SessionRecord,
    segments: Sequence[SegmentRecord],
    marks: Sequence[MarkRecord] = (),
    summaries: Iterable[SummaryRecord] = (),
    notes: Sequence[NoteRecord] = (),
    speakers: Mapping[str, str] = NO_NAMES,
) -> str:
    """Render in a named format: JSON gets every summary, the others the latest one. The
    person's notes go into Markdown and JSON (subtitles and plain text are the transcript);
    marks go inline in Markdown and plain text, in JSON's list, not into subtitles."""
    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    every = list(summaries)
    if fmt == "json":
        return to_json(session, segments, marks, summaries=every, notes=notes, speakers=speakers)
    latest = max(every, key=lambda s: (s.created_at, s.id), default=None)
    if fmt == "md":
        return to_markdown(session, segments, marks, latest, notes=notes, speakers=speakers)
    return FORMATS[fmt].render(session, segments, marks, latest, speakers=speakers)
