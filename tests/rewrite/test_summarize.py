import itertools
import re

import pytest

from rewrite.base import Message, RewriteError, Segment
from rewrite.prompts import MAP_SYSTEM, MERGE_SYSTEM, SUMMARY_SYSTEM, Template, prompt_tokens
from rewrite.summarize import Citation, Summarizer, check_citations

from .scripted_backend import ScriptedBackend

# -- citation checking -------------------------------------------------------------------


def test_valid_citations_are_kept_as_written():
    md = "### Decisions\n- Ship on Friday [#1, #3].\n- Budget approved [#2]\n"
    out, cites, removed = check_citations(md, [1, 2, 3])
    assert out == md.rstrip("\n") and removed == 0
    assert cites == [Citation("Ship on Friday.", (1, 3)), Citation("Budget approved", (2,))]


def test_bad_ids_are_removed_and_counted():
    md = ("### Decisions\n- Ship on Friday [#1, #99].\n- Invented [#42]\n- Range off the end [#2-#50], "
          "then [#3]\n### Action items\n- Ann: notes by Monday [#7 , #8; #2]")
    out, cites, removed = check_citations(md, [1, 2, 3, 7])
    assert out == ("### Decisions\n- Ship on Friday [#1].\n- Invented\n- Range off the end, then [#3]\n"
                   "### Action items\n- Ann: notes by Monday [#7, #2]")
    assert removed == 4
    assert cites == [Citation("Ship on Friday.", (1,)), Citation("Range off the end, then", (3,)),
                     Citation("Ann: notes by Monday", (7, 2))]


def test_ranges_expand_to_the_transcript_ids_within():
    out, cites, removed = check_citations("- Agreed [#10-#14] and [#20–22] and [#14-#10]", [10, 11, 14, 20, 21, 22])
    assert removed == 0 and out == "- Agreed [#10-#14] and [#20–22] and [#14-#10]"
    assert cites == [Citation("Agreed and and", (10, 11, 14, 20, 21, 22))]


def test_citations_under_any_heading_paragraphs_and_continuations():
    md = ("# Notes\n\nA paragraph that cites [#5]\nand goes on [#6].\n\n## Risks\n"
          "1. Vendor may slip\n   by a week [#2]\n2) Nothing cited here\n* Star bullet [#3]\n"
          "- nested\n  - child [#4]\n- [#99] only a bad one\n")
    out, cites, removed = check_citations(md, range(1, 10))
    assert removed == 1 and "- only a bad one" in out.splitlines()
    assert cites == [Citation("A paragraph that cites and goes on.", (5, 6)),
                     Citation("Vendor may slip by a week", (2,)),
                     Citation("Star bullet", (3,)), Citation("child", (4,))]


def test_text_that_only_looks_like_a_citation_is_left_alone():
    md = "- See [1] and [link](#12) and #12 and [#] and [#id, #id]"
    assert check_citations(md, [12]) == (md, [], 0)
    assert check_citations("", [1]) == ("", [], 0)


# -- the summarizer ----------------------------------------------------------------------


def seg(i: int, text: str, t: float | None = None) -> Segment:
    t = 4.0 * i if t is None else t
    return Segment(i, t, t + 3.5, text)


def line_ids(text: str) -> list[int]:
    """Ids of the transcript lines in a prompt."""
    return [int(x) for x in re.findall(r"^\[#(\d+) ", text, re.MULTILINE)]


def cited_ids(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"#(\d+)", text)]


def cite(ids) -> str:
    return "[" + ", ".join(f"#{i}" for i in dict.fromkeys(ids)) + "]"


class FakeModel:
    """Map: one decision citing the chunk's first and last line (padded to `map_words`).
    Merge: one bullet citing everything in the notes (padded to `merge_words`).
    Summary: a Decisions section citing everything it was given."""

    def __init__(self, map_words: int = 0, merge_words: int = 0, extra: str = ""):
        self.map_words, self.merge_words, self.extra = map_words, merge_words, extra

    def __call__(self, messages: list[Message], max_tokens: int) -> str:
        system, user = messages[0].content, messages[-1].content
        if system == MAP_SYSTEM:
            ids = line_ids(user)
            return f"- Decision: part from {ids[0]} [#{ids[0]}, #{ids[-1]}]\n" + "- pad" + " x" * self.map_words
        if system == MERGE_SYSTEM:
            return f"- Decision: merged {cite(cited_ids(user))}\n- pad" + " x" * self.merge_words
        assert system == SUMMARY_SYSTEM
        ids = line_ids(user) or cited_ids(user.split("Template:")[0])
        return f"### Decisions\n- Everything {cite(ids)}{self.extra}\n"


def calls_by_kind(backend: ScriptedBackend) -> list[str]:
    kinds = {MAP_SYSTEM: "map", MERGE_SYSTEM: "merge", SUMMARY_SYSTEM: "final"}
    return [kinds[c.system] for c in backend.calls]


def test_empty_transcript_is_one_clear_error_before_anything_runs():
    b = ScriptedBackend(FakeModel())
    for segments in ([], [seg(1, "  "), seg(2, "\n")]):
        with pytest.raises(RewriteError) as e:
            Summarizer(b).stream(segments)  # raised on the call, not on the first next()
        assert str(e.value) == "the meeting has no transcript to summarize"
    assert b.calls == []


def test_result_is_only_there_after_the_stream():
    s = Summarizer(ScriptedBackend(FakeModel()))
    with pytest.raises(RuntimeError):
        _ = s.result
    it = s.stream([seg(1, "hello")])
    with pytest.raises(RuntimeError):
        _ = s.result
    list(it)
    assert s.result.chunks == 1


def test_a_short_meeting_is_one_streamed_pass():
    segs = [seg(1, "we ship on friday"), seg(2, " "), seg(3, "Ann takes the notes", t=3700.0)]
    reply = "### Decisions\n- Ship on Friday [#1]\n\n### Action items\n- Ann: notes [#3, #2, #40]\n"
    b = ScriptedBackend([reply])
    s = Summarizer(b, meeting={"title": "Weekly", "date": "2024-05-01", "language": "English", "id": 5})
    pieces = list(s.stream(segs))
    # Checked as it streams: what was shown is what is kept (the bad citations never appear).
    assert len(pieces) > 5 and "".join(pieces) == s.result.markdown
    [call] = b.calls
    assert call.system == SUMMARY_SYSTEM and call.max_tokens == 1024 and call.temperature == 0.0
    assert "[#1 00:04] we ship on friday\n[#3 1:01:40] Ann takes the notes\n" in call.user
    assert "title: Weekly; date: 2024-05-01; duration: 1:01:43" in call.user and "in English" in call.user
    assert "Template:\n### Key points" in call.user
    r = s.result
    assert r.markdown == "### Decisions\n- Ship on Friday [#1]\n\n### Action items\n- Ann: notes [#3]"
    assert r.citations == [Citation("Ship on Friday", (1,)), Citation("Ann: notes", (3,))]
    assert (r.removed_citations, r.chunks, r.truncated_segments, r.merge_rounds, r.cut_replies) == (2, 1, 0, 0, 0)


def test_user_template_fields_are_rendered_into_the_prompt():
    b = ScriptedBackend(["## x", "## y"])
    t = Template.from_text("## Standup {date} ({duration}) {{team}}\n- Yesterday\n")
    list(Summarizer(b, t, meeting={"date": "2024-05-01"}).stream([seg(1, "hi", t=0.0), seg(2, "bye", t=60.0)]))
    assert "Template:\n## Standup 2024-05-01 (01:03) {team}\n- Yesterday\n" in b.calls[0].user
    list(Summarizer(b, "## Plain {title}\n").stream([seg(1, "hi")]))
    assert "Template:\n## Plain unknown\n" in b.calls[1].user
    with pytest.raises(RewriteError, match=r"^template the template uses unknown field \{who\}"):
        Summarizer(b, "## {who}\n")


def test_a_fenced_reply_is_unwrapped():
    b = ScriptedBackend(["```markdown\n### Decisions\n- Yes [#1]\n```"])
    s = Summarizer(b)
    list(s.stream([seg(1, "yes")]))
    assert s.result.markdown == "### Decisions\n- Yes [#1]"


def three_hours() -> list[Segment]:
    """2,700 segments of 30 words, one every 4 s: a 3-hour meeting of ~86,000 tokens."""
    return [Segment(i, 4.0 * i, 4.0 * i + 3.9, " ".join(f"w{i}_{k}" for k in range(30))) for i in range(1, 2701)]


@pytest.mark.parametrize("counting", ["words", "chars"])
def test_three_hours_against_a_4k_context(counting):
    segs = three_hours()
    b = ScriptedBackend(FakeModel(), context_tokens=4096, counting=counting)
    progress = []
    s = Summarizer(b, on_progress=lambda done, total: progress.append((done, total)))
    text = "".join(s.stream(segs))
    r = s.result
    kinds = calls_by_kind(b)
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    assert kinds == ["map"] * r.chunks + ["final"] and r.merge_rounds == 0
    assert 20 <= r.chunks <= 60 if counting == "words" else 50 <= r.chunks <= 150
    assert progress == [(k, r.chunks) for k in range(1, r.chunks + 1)]
    # Every segment lands in exactly one chunk, in order.
    assert [i for c in maps for i in line_ids(c.user)] == list(range(1, 2701))
    for c in b.calls:  # every request fits the context by the backend's own count
        assert prompt_tokens(b, c.messages) + c.max_tokens <= 4096
        assert b.prompt_tokens(c.messages) + c.max_tokens <= 4096
    # Chunks are full: the next segment's line would not have fitted (beside the 16 tokens
    # kept free and the one per line allowed for its newline).
    for c, nxt in itertools.pairwise(maps):
        first = line_ids(nxt.user)[0]
        end = "\n\nWrite the notes now."
        grown = c.user.replace(end, f"\n[#{first} 00:00] {segs[first - 1].text}{end}")
        slack = 16 + len(line_ids(c.user)) + 1
        assert prompt_tokens(b, [c.messages[0], Message("user", grown)]) + c.max_tokens > 4096 - slack
    # The merge keeps the citations of every chunk.
    expected = [i for c in maps for i in (line_ids(c.user)[0], line_ids(c.user)[-1])]
    assert r.citations == [Citation("Everything", tuple(dict.fromkeys(expected)))]
    assert r.removed_citations == 0 and r.truncated_segments == 0 and r.cut_replies == 0
    assert text == r.markdown == b.calls[-1].reply.strip()  # streamed as kept


def test_plan_chunks_without_calling_the_model():
    b = ScriptedBackend(FakeModel(), context_tokens=4096)
    plan = Summarizer(b).plan(three_hours())
    assert b.calls == []
    assert [line_ids("\n".join(chunk)) for chunk in plan] and \
        [i for chunk in plan for i in line_ids("\n".join(chunk))] == list(range(1, 2701))
    assert all(len(chunk) == len(line_ids("\n".join(chunk))) for chunk in plan)
    s = Summarizer(b)
    list(s.stream(three_hours()))
    assert len(plan) == s.result.chunks
    short = Summarizer(b).plan([seg(1, "hello there"), seg(2, "bye")])
    assert short == [["[#1 00:04] hello there", "[#2 00:08] bye"]]


def test_notes_too_long_for_one_reduce_are_condensed_in_rounds():
    segs = three_hours()[:900]  # ~29,000 tokens: ~11 chunks
    b = ScriptedBackend(FakeModel(map_words=2000, merge_words=2000), context_tokens=4096)
    s = Summarizer(b)
    list(s.stream(segs))
    r = s.result
    kinds = calls_by_kind(b)
    assert kinds[: r.chunks] == ["map"] * r.chunks and kinds[-1] == "final"
    merges = [c for c in b.calls if c.system == MERGE_SYSTEM]
    assert r.merge_rounds >= 2 and len(merges) == len(kinds) - r.chunks - 1
    # Each round pairs neighbours (every note is as long as a reply may be): n -> ceil(n / 2).
    n, expected_merges, rounds = r.chunks, 0, 0
    while n > 2:  # two notes fit one reduce
        expected_merges, n, rounds = expected_merges + n // 2, (n + 1) // 2, rounds + 1
    assert (len(merges), r.merge_rounds) == (expected_merges, rounds)
    for c in b.calls:
        assert prompt_tokens(b, c.messages) + c.max_tokens <= 4096
    # Every chunk's citations survive every round.
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    expected = [i for c in maps for i in (line_ids(c.user)[0], line_ids(c.user)[-1])]
    assert r.citations == [Citation("Everything", tuple(dict.fromkeys(expected)))]
    # Every note hit its limit: said, not hidden.
    assert r.cut_replies == r.chunks + len(merges)
    assert r.markdown.endswith(f"> Note: {r.cut_replies} of the model's notes on parts of this long meeting hit "
                               f"the {s.note_reply}-token limit and were cut short; points from those parts may "
                               "be missing.")


def test_merges_only_where_needed():
    segs = three_hours()[:900]
    b = ScriptedBackend(FakeModel(map_words=700), context_tokens=4096)
    s = Summarizer(b)
    list(s.stream(segs))
    kinds = calls_by_kind(b)
    assert s.result.merge_rounds == 1 and kinds.count("final") == 1 and 0 < kinds.count("merge") < s.result.chunks
    assert s.result.cut_replies == 0 and "> Note" not in s.result.markdown


def test_a_segment_longer_than_a_chunk_is_split_and_noted():
    words = [f"v{k}" for k in range(3000)]
    segs = [seg(1, "opening words"), seg(2, " ".join(words)), seg(3, "closing words")]
    b = ScriptedBackend(FakeModel(), context_tokens=2048)
    s = Summarizer(b)
    streamed = "".join(s.stream(segs))
    r = s.result
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    assert r.truncated_segments == 1 and r.chunks == len(maps) >= 2
    sent = " ".join(re.findall(r"^\[#2 00:08\] (.*)$", "\n".join(c.user for c in maps), re.MULTILINE)).split()
    assert sent == words  # nothing dropped, nothing repeated
    note = ("> Note: 1 transcript segment was too long for the model's context (2048 tokens) and was read in "
            "pieces.")
    assert r.markdown.endswith(note) and streamed.endswith(note)
    assert r.citations[0].segment_ids == (1, 2, 3)


def test_a_word_longer_than_a_chunk_is_cut_by_characters():
    blob = "x" * 40_000  # no spaces at all
    b = ScriptedBackend(FakeModel(), context_tokens=2048, counting="chars")
    s = Summarizer(b)
    list(s.stream([seg(1, "hi"), seg(2, blob)]))
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    assert "".join(re.findall(r"^\[#2 00:08\] (x+)$", "\n".join(c.user for c in maps), re.MULTILINE)) == blob
    assert s.result.truncated_segments == 1
    for c in b.calls:
        assert prompt_tokens(b, c.messages) + c.max_tokens <= 2048


def test_a_summary_cut_at_its_limit_says_so():
    b = ScriptedBackend(FakeModel(extra=" y" * 5000))
    s = Summarizer(b, max_output_tokens=300)
    streamed = "".join(s.stream([seg(1, "hello")]))
    assert b.count_tokens(b.calls[0].reply) == 300 and s.result.cut_replies == 1
    assert s.result.markdown.endswith("\n\n> Note: The summary hit the 300-token limit and was cut short.")
    assert streamed.endswith("> Note: The summary hit the 300-token limit and was cut short.")


def test_bad_citations_in_notes_are_removed_and_counted():
    segs = three_hours()[:300]

    def model(messages, max_tokens):
        if messages[0].content == MAP_SYSTEM:
            return f"- Decision: x [#{line_ids(messages[-1].content)[0]}, #99999]"
        return FakeModel()(messages, max_tokens)

    b = ScriptedBackend(model, context_tokens=2048)
    s = Summarizer(b)
    list(s.stream(segs))
    r = s.result
    assert r.chunks > 1 and r.removed_citations == r.chunks
    assert "99999" not in b.calls[-1].user and 99999 not in r.citations[0].segment_ids


def test_a_context_too_small_for_the_template_is_one_clear_error():
    b = ScriptedBackend(FakeModel(), context_tokens=300)
    with pytest.raises(RewriteError) as e:
        Summarizer(b).stream([seg(1, "hello")])
    assert str(e.value).startswith("the model's context (300 tokens) is too small to summarize with this template")
    assert "\n" not in str(e.value) and b.calls == []


class NewlineHeavy(ScriptedBackend):
    """A tokenizer for which lines cost more joined than apart: the per-line estimate is short."""

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 3 * text.count("\n")


def test_chunks_are_checked_on_the_whole_prompt_when_the_estimate_is_short():
    segs = three_hours()[:600]
    b = NewlineHeavy(FakeModel(), context_tokens=4096)
    s = Summarizer(b)
    list(s.stream(segs))
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    assert len(maps) == s.result.chunks > 1
    assert [i for c in maps for i in line_ids(c.user)] == list(range(1, 601))
    for c in b.calls:
        assert prompt_tokens(b, c.messages) + c.max_tokens <= 4096


def test_a_large_template_leaves_less_room_for_notes_and_still_completes():
    template = "## Agenda\n" + "\n".join(f"- Item {k}: " + "detail " * 20 for k in range(100)) + "\n"
    b = ScriptedBackend(FakeModel(map_words=5000, merge_words=5000), context_tokens=4096)
    s = Summarizer(b, template)
    list(s.stream(three_hours()[:300]))
    r = s.result
    assert r.chunks > 2 and r.merge_rounds >= 1 and s.note_reply < s.reply
    for c in b.calls:
        assert prompt_tokens(b, c.messages) + c.max_tokens <= 4096
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    expected = [i for c in maps for i in (line_ids(c.user)[0], line_ids(c.user)[-1])]
    assert r.citations == [Citation("Everything", tuple(dict.fromkeys(expected)))]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_what_streams_is_what_is_kept(size):
    """Citations are checked as the reply streams, in pieces of any size: a bad one never
    shows, a fence around the whole reply and blank lines at its ends are left out."""
    reply = "\n```markdown\n- Go [#1, #9]  and [#99]\n\n\n- Ann [#2-#3]; Bob [#2-#50]\n```\n\n"

    class Pieces(ScriptedBackend):
        def complete(self, messages, max_tokens, temperature=0.0):
            text = "".join(super().complete(messages, max_tokens, temperature))
            yield from (text[i : i + size] for i in range(0, len(text), size))

    s = Summarizer(Pieces([reply]))
    shown = "".join(s.stream([seg(1, "go"), seg(2, "ann"), seg(3, "bob")]))
    assert shown == s.result.markdown == "- Go [#1]  and\n\n\n- Ann [#2-#3]; Bob"
    assert s.result.removed_citations == 3
    assert s.result.citations == [Citation("Go and", (1,)), Citation("Ann; Bob", (2, 3))]


class _Counting:
    """Pieces handed out one at a time, counted, and whether the model was stopped."""

    def __init__(self, text: str):
        self.pieces = re.findall(r"\s*\S+|\s+$", text)
        self.taken = 0
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        if self.taken == len(self.pieces):
            raise StopIteration
        self.taken += 1
        return self.pieces[self.taken - 1]

    def close(self):
        self.closed = True


def test_a_model_that_loops_is_stopped_and_its_copies_left_out():
    # SmolLM2-135M writes one bullet until its token limit (1024 tokens, a minute on a CPU).
    loop = "### Decisions\n- Ship on Friday [#1]\n" + "- One bullet per decision [#1]\n" * 200
    reply = _Counting(loop)

    class Looping(ScriptedBackend):
        def complete(self, messages, max_tokens, temperature=0.0):
            return reply

    s = Summarizer(Looping())
    shown = "".join(s.stream([seg(1, "we ship on friday")]))
    assert shown == s.result.markdown == "### Decisions\n- Ship on Friday [#1]\n- One bullet per decision [#1]"
    assert reply.taken < 40 and reply.closed  # stopped at the third copy, not at the limit
    # two bullets in turn are a loop too
    turns = _Counting("### Key points\n- a [#1]\n" + "- b [#1]\n- c [#1]\n" * 100)

    class Turns(ScriptedBackend):
        def complete(self, messages, max_tokens, temperature=0.0):
            return turns

    s = Summarizer(Turns())
    assert "".join(s.stream([seg(1, "x")])) == "### Key points\n- a [#1]\n- b [#1]\n- c [#1]"
    assert turns.taken < 40


@pytest.mark.parametrize("reply", [
    "### Decisions\n- None\n\n### Action items\n- None\n",  # the same line under two headings
    "- a [#1]\n- b [#1]\n- c [#1]\n- a [#1]\n",  # not within two lines
])
def test_lines_said_again_apart_are_kept(reply):
    s = Summarizer(ScriptedBackend([reply]))
    assert "".join(s.stream([seg(1, "we ship on friday")])) == reply.strip()
