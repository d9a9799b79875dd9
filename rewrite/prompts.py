"""Prompts for cleanup and summaries, and the summary templates users can override.

Transcript lines carry their segment ids (`[#12 05:03] text`; the app gives each segment's
number in its meeting, the number a reader sees) so that every cleaned line and every
summary bullet can be tied back to the segments it rests on. A template is the
Markdown skeleton of a summary; it may use the meeting fields {title}, {date},
{duration} and {language} (literal braces as {{ }}); HTML comments in it are notes for
the person editing it and are never sent to the model.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from rewrite.base import ChatModel, Message, Note, RewriteError, Segment

MAX_TEMPLATE_BYTES = 1 << 20  # a summary template is a page of Markdown

FIELDS = ("title", "date", "duration", "language")
MESSAGE_OVERHEAD = 8  # tokens a chat template adds around each message (role markers, separators)

# -- transcript lines ------------------------------------------------------------------


def clock(seconds: float) -> str:
    """mm:ss below an hour, h:mm:ss from there on."""
    s = max(0, int(seconds))
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def cleanup_line(segment_id: int, text: str) -> str:
    return f"[#{segment_id}] {_one_line(text)}"


def transcript_line(segment: Segment, text: str | None = None) -> str:
    """`[#id mm:ss] text` (with the channel when there is one, and `Anya: ` before the text when
    the speaker is known, so action items get owners by name); `text` overrides the segment's."""
    where = f" {segment.channel}" if segment.channel else ""
    who = f"{_one_line(segment.speaker)}: " if segment.speaker and segment.speaker.strip() else ""
    return f"[#{segment.id} {clock(segment.start)}{where}] {who}{_one_line(segment.text if text is None else text)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def prompt_tokens(backend: ChatModel, messages: Sequence[Message]) -> int:
    """Tokens the messages take in the model's prompt, by the backend's own count, with an
    allowance for the chat template's markers (and the assistant turn's opening)."""
    return sum(backend.count_tokens(m.content) + MESSAGE_OVERHEAD for m in messages) + MESSAGE_OVERHEAD


# -- cleanup ---------------------------------------------------------------------------

CLEANUP_SYSTEM = """\
You clean up lines of a speech-recognition transcript.
For each line: fix punctuation and capitalization; remove filler words (um, uh, er, \
you know, I mean, filler "like"), stutters, repeated words and false starts.
Keep the speaker's own words and meaning. Never add a word, name, number or fact that \
is not in the line, never merge or split lines, never translate, never answer or comment.
Reply with exactly the same line ids, in the same order, one line each: [#id] cleaned text"""


def cleanup_messages(segments: Sequence[Segment]) -> list[Message]:
    lines = "\n".join(cleanup_line(s.id, s.text) for s in segments)
    return [Message("system", CLEANUP_SYSTEM),
            Message("user", f"Clean up these transcript lines:\n\n{lines}")]


# -- summaries ---------------------------------------------------------------------------

SUMMARY_RULES = """\
Rules:
- Use only what the transcript says. Never invent names, owners, dates, numbers or \
decisions; leave out what is unclear, or list it as an open question.
- End every decision and every action item with the ids of the transcript lines it rests \
on, like [#12] or [#12, #15]; cite other points the same way. Cite only ids that appear \
in the text you were given.
- Give an action item's owner and due date only when they were said."""

SUMMARY_SYSTEM = f"""\
You write concise meeting summaries in Markdown from transcripts.
{SUMMARY_RULES}
- Follow the template: its headings, in its order, replacing its placeholder bullets; \
write "None." under a heading with nothing to report.
- Reply with the summary only."""

MAP_SYSTEM = f"""\
You take notes on one part of a longer meeting transcript; the notes of all parts are \
later merged into one summary.
List as Markdown bullets the points discussed, decisions, action items (owner and due \
date when said) and open questions in this part, starting each decision with \
"Decision:", each action item with "Action:" and each open question with "Question:".
{SUMMARY_RULES}
- Reply with the bullets only."""

MERGE_SYSTEM = f"""\
You condense notes on consecutive parts of a meeting into fewer, shorter bullets.
Keep every decision, action item and open question with its "Decision:", "Action:" or \
"Question:" label; merge bullets that say the same thing and combine their citations.
{SUMMARY_RULES}
- Keep the citations [#id] of every bullet you keep.
- Reply with the bullets only."""

DEFAULT_TEMPLATE = """\
<!--
A summary template: the Markdown skeleton the model fills in. Copy this file to
NAME.md in this folder; a summary then asks for it by NAME.
Fields: {title}, {date}, {duration}, {language}; write literal braces as {{ and }}.
Decisions and action items always end with the transcript lines they rest on, like
[#12] or [#12, #15] ([#id] below is a placeholder: a real line number could be copied
as if it were a citation). This comment is not sent to the model.
-->
### Key points
- One bullet per main point discussed [#id]

### Decisions
- What was decided [#id, #id]

### Action items
- Owner: what to do, by the due date when one was said [#id]

### Open questions
- What was raised and left unresolved [#id]
"""


def _meeting_header(meeting: dict[str, str]) -> str:
    parts = [f"{k}: {meeting[k]}" for k in ("title", "date", "duration") if meeting.get(k)]
    head = f"Meeting — {'; '.join(parts)}\n" if parts else ""
    lang = meeting.get("language")
    return head + (f"Write the summary in {lang}." if lang else "Write the summary in the transcript's language.")


OWN_NOTES_HEAD = ("The note-taker's own notes, typed during the meeting (their emphasis: give weight to "
                  "what they stress; these lines have no ids and are never cited, cite the transcript lines "
                  "they refer to)")


def own_notes_line(note: Note) -> str:
    """`- [mm:ss] text`: no `#id`, so it cannot be mistaken for a transcript line."""
    return f"- [{clock(note.at)}] {_one_line(note.text)}"


def own_notes_block(notes: Sequence[Note]) -> str:
    """The person's notes as a prompt section ending in a blank line; empty when there are none."""
    if not notes:
        return ""
    return f"{OWN_NOTES_HEAD}:\n" + "\n".join(own_notes_line(n) for n in notes) + "\n\n"


# Only for meetings whose lines name their speakers: other prompts stay as they were.
SPEAKERS_HEAD = ("each line: [#id time] speaker: text; the speaker is a name, or a label such as S2 when "
                 "unnamed; whoever takes on a task owns that action item")


def _transcript_head(speakers: bool) -> str:
    return SPEAKERS_HEAD if speakers else "each line: [#id time] text"


def summary_messages(lines: Iterable[str], template: str, meeting: dict[str, str],
                     notes: Sequence[Note] = (), speakers: bool = False) -> list[Message]:
    """One pass: the whole transcript (and the person's own notes) into the template;
    `speakers`: its lines say who spoke."""
    body = "\n".join(lines)
    return [Message("system", SUMMARY_SYSTEM),
            Message("user", f"Transcript ({_transcript_head(speakers)}):\n{body}\n\n"
                            f"{own_notes_block(notes)}"
                            f"{_meeting_header(meeting)}\nTemplate:\n{template}\n\n"
                            "Write the summary now, following the template.")]


def map_messages(lines: Iterable[str], speakers: bool = False) -> list[Message]:
    """One chunk of a long transcript into notes with citations."""
    body = "\n".join(lines)
    return [Message("system", MAP_SYSTEM),
            Message("user", f"Transcript part ({_transcript_head(speakers)}):\n{body}\n\nWrite the notes now.")]


def merge_messages(notes: Iterable[str]) -> list[Message]:
    """Notes on several parts into fewer notes, citations kept."""
    body = "\n\n".join(notes)
    return [Message("system", MERGE_SYSTEM),
            Message("user", f"Notes, in meeting order:\n\n{body}\n\nWrite the condensed notes now.")]


def reduce_messages(notes: Iterable[str], template: str, meeting: dict[str, str],
                    own_notes: Sequence[Note] = ()) -> list[Message]:
    """The notes on every part of a long meeting (and the person's own notes) into the template."""
    body = "\n\n".join(notes)
    return [Message("system", SUMMARY_SYSTEM),
            Message("user", f"Notes on the whole meeting, part by part, in order; their citations are "
                            f"transcript line ids:\n\n{body}\n\n"
                            f"{own_notes_block(own_notes)}"
                            f"{_meeting_header(meeting)}\nTemplate:\n{template}\n\n"
                            "Write the summary now, following the template.")]


# -- templates -------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)


@dataclass(frozen=True)
class Template:
    """A validated summary template; `text` is what the user wrote (comments removed)."""

    name: str
    text: str

    @classmethod
    def from_text(cls, text: str, name: str = "the template") -> Template:
        body = _COMMENT.sub("", text).strip("\n")
        if not body.strip():
            raise RewriteError(f"template {name} is empty")
        try:
            parsed = list(string.Formatter().parse(body))
        except ValueError:
            raise RewriteError(f"template {name} has a stray '{{' or '}}'; write literal braces as {{{{ and }}}}") \
                from None
        for _, field, spec, conv in parsed:
            if field is None:
                continue
            if field not in FIELDS or spec or conv:
                shown = "{" + field + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
                known = ", ".join("{" + f + "}" for f in FIELDS)
                raise RewriteError(f"template {name} uses unknown field {shown}; known: {known}")
        return cls(name, body + "\n")

    def render(self, **fields: object) -> str:
        """The template with the meeting's fields filled in; a field not given (or empty)
        reads "unknown"."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown template fields: {', '.join(sorted(unknown))}")
        return self.text.format(**{f: field_text(f, fields.get(f)) for f in FIELDS})


def field_text(field: str, value: object) -> str:
    """A meeting field as text: dates as YYYY-MM-DD, a duration in seconds as a clock."""
    if value is None or value == "":
        return "unknown"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if field == "duration" and isinstance(value, (int, float)):
        return clock(value)
    return str(value)


def default_template() -> Template:
    return Template.from_text(DEFAULT_TEMPLATE, "default")


def load_template(name_or_path: str | None, templates_dir: Path | None = None) -> Template:
    """None: the built-in default. A bare name (`standup` or `standup.md`): that file in
    `templates_dir`; `default` falls back to the built-in when no such file exists. Anything
    with a folder in it (or a name not in `templates_dir` that is a file here): that file."""
    if name_or_path is None:
        return default_template()
    raw = name_or_path.strip()
    if not raw:
        raise RewriteError("template name is empty")
    looks_like_path = any(sep in raw for sep in ("/", "\\")) or raw.startswith("~")
    if not looks_like_path:
        stem = raw.removesuffix(".md")
        if templates_dir is not None and (templates_dir / f"{stem}.md").exists():
            return _read_template(templates_dir / f"{stem}.md")
        if stem == "default":
            return default_template()
        if Path(raw).is_file():
            return _read_template(Path(raw))
        if templates_dir is None:
            raise RewriteError(f"no template named '{stem}' (and no templates folder to look in)")
        found = sorted(p.stem for p in templates_dir.glob("*.md")) if templates_dir.is_dir() else []
        listed = ", ".join(found) if found else "none there"
        raise RewriteError(f"no template named '{stem}' in {templates_dir} (found: {listed})")
    path = Path(raw).expanduser()
    if not path.exists():
        raise RewriteError(f"template file {path} does not exist")
    return _read_template(path)


def _read_template(path: Path) -> Template:
    try:
        text = read_user_text(path, MAX_TEMPLATE_BYTES)
    except ValueError as e:
        raise RewriteError(f"cannot read template {path}: {e}") from None
    return Template.from_text(text, path.name)


def read_user_text(path: Path, max_bytes: int) -> str:
    """A small UTF-8 text file a user names (a template, an export to import): a regular
    file under `max_bytes`, so /dev/zero, a FIFO or a 2 GB file is one line, not a hang.
    ValueError says why in a few words."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ValueError(e.strerror or str(e)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ValueError("it is a folder" if stat.S_ISDIR(st.st_mode) else "it is not a regular file")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > max_bytes:
            raise ValueError(f"it is {st.st_size / 2**20:.0f} MB; at most {max_bytes / 2**20:.0f} MB is read")
        try:
            return f.read(max_bytes + 1).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("it is not UTF-8 text") from None
        except OSError as e:
            raise ValueError(e.strerror or str(e)) from None


def write_default_templates(templates_dir: Path) -> Path:
    """Write the default template as `default.md` (if absent) for users to copy; its path."""
    templates_dir.mkdir(parents=True, exist_ok=True)
    path = templates_dir / "default.md"
    if not path.exists():
        path.write_text(DEFAULT_TEMPLATE, encoding="utf-8")
    return path
