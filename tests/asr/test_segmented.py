import numpy as np
import pytest

from asr.base import Final, Partial, SessionOptions
from asr.segmented import SegmentedSession

from .scripted_decoder import SR, ScriptedDecoder, utterance_audio, word

UTTERANCES = [[300, 400, 500, 600, 700, 800, 900, 1000], [350, 450, 550], [600, 650, 700, 750, 800]]


def meeting() -> tuple[np.ndarray, list[tuple[float, float]]]:
    parts, spans, t = [np.zeros(SR, np.float32)], [], 1.0
    for pitches in UTTERANCES:
        a = utterance_audio(pitches)
        parts += [a, np.zeros(int(1.5 * SR), np.float32)]
        spans.append((t, t + len(a) / SR))
        t += len(a) / SR + 1.5
    return np.concatenate(parts), spans


def drive(session, audio, chunk=1600):
    events, done = [], []
    for i in range(0, len(audio), chunk):
        session.feed_audio(audio[i : i + chunk])
        while not session.idle:
            events += session.step()
            done.append(session.done_s)
    events += session.finish()
    return events, done


def test_live_partials_commit_agreed_prefix_and_finals_at_endpoints():
    audio, spans = meeting()
    dec = ScriptedDecoder()
    events, done = drive(SegmentedSession(dec, SessionOptions(partials=True)), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]
    for f, (a, b) in zip(finals, spans):
        assert a - 0.35 <= f.start <= a and b - 0.15 <= f.end <= b + 0.9
    partials = [e for e in events if isinstance(e, Partial) and e.text]
    assert len(partials) >= 3
    # Partials of the first utterance grow as audio arrives, and an empty partial clears them.
    first = [p.text for p in partials if p.start < spans[0][1]]
    assert all(b.startswith(a.rsplit(" ", 1)[0]) for a, b in zip(first, first[1:]))
    assert any(isinstance(e, Partial) and e.text == "" for e in events)
    # Words agreed on were forced as the prefix of later partial decodes; a final is
    # decoded afresh (with timestamps), never from a partial's words.
    assert any(c["prefix"] for c in dec.calls)
    assert all(not c["prefix"] for c in dec.calls if c["timestamps"])
    assert done == sorted(done)


def test_live_finals_hear_the_utterances_before_them():
    """Each closing utterance is decoded behind the audio of the finals before it (in one
    window, as offline), those finals forced, so only the new text comes back."""
    audio, spans = meeting()
    dec = ScriptedDecoder()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=True)), audio)
    finals_calls = [c for c in dec.calls if c["timestamps"]]
    assert [c["heard"] for c in finals_calls] == [
        [], [" ".join(map(word, UTTERANCES[0]))], [" ".join(map(word, u)) for u in UTTERANCES[:2]]]
    # the window grows by each utterance and the pause after it (cut to 0.8 s + padding)
    assert finals_calls[2]["seconds"] > finals_calls[1]["seconds"] > finals_calls[0]["seconds"]
    assert finals_calls[2]["seconds"] < spans[2][1] - spans[0][0]
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]


def test_live_history_is_cut_by_age_and_by_a_flagged_final():
    one = utterance_audio([300, 400, 500])
    gap = lambda s: np.zeros(int(s * SR), np.float32)  # noqa: E731
    audio = np.concatenate([gap(1), one, gap(1.5), one, gap(25), one, gap(1.5)])
    dec = ScriptedDecoder()
    drive(SegmentedSession(dec, SessionOptions(partials=True)), audio)
    heard = [len(c["heard"]) for c in dec.calls if c["timestamps"]]
    assert heard == [0, 1, 0]  # 25 s of silence: the third utterance starts afresh


@pytest.mark.parametrize("chunk", [160, 16000, 10 * SR])
def test_offline_packs_windows_and_gives_the_same_text(chunk):
    audio, spans = meeting()
    dec = ScriptedDecoder()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=False)), audio, chunk)
    assert not any(isinstance(e, Partial) for e in events)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]
    for f, (a, b) in zip(finals, spans):
        assert abs(f.start - a) < 0.3 and abs(f.end - b) < 0.3
    assert all(s <= 30.0 for batch in dec.batches for s in batch)
    assert sum(len(b) for b in dec.batches) == 1  # the whole meeting fits one window


def test_offline_long_meeting_batches_windows():
    one, _ = meeting()
    audio = np.concatenate([one] * 8)  # ~2 minutes
    dec = ScriptedDecoder()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=False), batch_size=2), audio)
    assert len([e for e in events if isinstance(e, Final)]) == 8 * len(UTTERANCES)
    assert all(len(b) <= 2 for b in dec.batches) and any(len(b) == 2 for b in dec.batches)
    assert all(s <= 30.0 for batch in dec.batches for s in batch)


def test_finish_flushes_an_open_utterance():
    dec = ScriptedDecoder()
    s = SegmentedSession(dec, SessionOptions(partials=True))
    s.feed_audio(utterance_audio([500, 600, 700]))  # no trailing silence: still open
    while not s.idle:
        s.step()
    finals = [e for e in s.finish() if isinstance(e, Final)]
    assert [f.text for f in finals] == ["w500 w600 w700"]
    assert s.step() == [] and s.done_s == pytest.approx(s.fed_s)


def test_silence_is_idle_and_cheap():
    dec = ScriptedDecoder()
    s = SegmentedSession(dec, SessionOptions(partials=True))
    events, _ = drive(s, np.zeros(20 * SR, np.float32))
    assert events == [] and dec.calls == []


class _StopsEarly(ScriptedDecoder):
    """Like Whisper at times: a window of several utterances loses its last one."""

    def decode_many(self, windows):
        out = super().decode_many(windows)
        from asr.segmented import Transcript

        return [Transcript(" ".join(s[2] for s in t.segments[:-1]), t.segments[:-1]) if len(t.segments) > 1 else t
                for t in out]


def test_an_utterance_a_window_skipped_opens_the_next_window():
    audio, spans = meeting()
    dec = _StopsEarly()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=False)), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]
    assert [f.start for f in finals] == sorted(f.start for f in finals)
    assert dec.batches[-1] == [pytest.approx(spans[-1][1] - spans[-1][0] + 0.4, abs=0.3)]


def test_skipped_utterances_join_the_following_ones_and_nothing_is_said_twice():
    one, _ = meeting()
    audio = np.concatenate([one] * 6)
    dec = _StopsEarly()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=False), batch_size=2), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES] * 6
    assert all(b.start >= a.end - 0.05 for a, b in zip(finals, finals[1:]))
    # a skipped utterance was packed with the ones after it, not decoded on its own
    assert sum(len(b) for b in dec.batches) < 6 * len(UTTERANCES) / 1.5


class _Unfinished(ScriptedDecoder):
    """Ends every multi-word window inside its last segment, as Whisper does when the
    window's audio ends mid-sentence: the last segment has no closing timestamp."""

    def decode_many(self, windows):
        from asr.segmented import Transcript

        out = []
        for t in super().decode_many(windows):
            segs = list(t.segments)
            if len(segs) > 1:
                a, b, text = segs[-1]
                words = text.split()
                segs[-1] = (a, b, " ".join(words[: max(1, len(words) // 2)]))
                out.append(Transcript(" ".join(s[2] for s in segs), tuple(segs), complete_until=segs[-2][1] + 0.05))
            else:
                out.append(t)
        return out


def test_an_unfinished_last_segment_is_transcribed_again_by_the_next_window():
    audio, _ = meeting()
    dec = _Unfinished()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=False)), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]
    assert len(dec.batches) == 2 and len(dec.batches[1]) == 1


class _Slow(ScriptedDecoder):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def decode(self, audio, prefix, heard, timestamps):
        import time

        time.sleep(self.seconds)
        return super().decode(audio, prefix, heard, timestamps)


def test_partials_back_off_when_decoding_is_slow():
    """A decode that costs 0.9 s of compute spaces partials ~1.8 s of audio apart, not 1 s."""
    audio = utterance_audio(list(range(300, 1500, 50)) * 2)  # ~17 s of continuous 'speech'
    fast, slow = ScriptedDecoder(), _Slow(0.9)
    for dec in (fast, slow):
        drive(SegmentedSession(dec, SessionOptions(partials=True)), np.concatenate([audio, np.zeros(SR, np.float32)]))
    partial_calls = lambda d: [c for c in d.calls if not c["timestamps"] or c["prefix"]]  # noqa: E731
    assert len(partial_calls(slow)) < 0.7 * len(partial_calls(fast))


class _Stretched(ScriptedDecoder):
    """Like Whisper at times: a few words closed by a timestamp at the window's end, the
    speech between never transcribed."""

    def decode_many(self, windows):
        from asr.segmented import Transcript

        out = []
        for audio, t in zip(windows, super().decode_many(windows)):
            if len(t.segments) > 1:
                a, _, text = t.segments[0]
                t = Transcript(text, ((a, len(audio) / SR, text),))
            out.append(t)
        return out


def test_a_few_words_stretched_over_a_window_do_not_swallow_the_rest():
    pitches = [[300], [350, 450, 550], [600, 650, 700, 750]]
    gap = np.zeros(int(1.5 * SR), np.float32)
    audio = np.concatenate([gap] + [np.concatenate([utterance_audio(p), gap]) for p in pitches])
    dec = _Stretched()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=False)), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in pitches]
    # the one-word final ends where the next utterance starts, not at the window's end
    assert finals[0].end <= finals[1].start


class _SaysItTwice(ScriptedDecoder):
    """Like Whisper at times: a sentence first in a segment far too short to hold it, then
    again in its real place."""

    def decode_many(self, windows):
        from asr.segmented import Transcript

        out = []
        for t in super().decode_many(windows):
            a, b, text = t.segments[0]
            segs = ((a, a + 0.3, text), (a + 0.3, b, text)) + tuple(t.segments[1:])
            out.append(Transcript(" ".join(x[2] for x in segs), segs))
        return out


def test_a_sentence_written_twice_in_no_time_is_kept_once():
    audio, spans = meeting()
    events, _ = drive(SegmentedSession(_SaysItTwice(), SessionOptions(partials=False)), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]


class _StopsAfterHeard(ScriptedDecoder):
    """Like tiny.en at times (1 utterance in 20 of the evaluation set, up to four in a row):
    given earlier finals as heard tokens, it closes them and ends the transcript, so the
    new speech gets no text."""

    def decode(self, audio, prefix, heard, timestamps):
        from asr.segmented import Transcript

        t = super().decode(audio, prefix, heard, timestamps)
        return Transcript("") if heard and timestamps else t


def test_new_speech_the_heard_finals_silenced_is_decoded_without_them():
    audio, _ = meeting()
    dec = _StopsAfterHeard()
    events, _ = drive(SegmentedSession(dec, SessionOptions(partials=True)), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]
    # every utterance after the first was tried behind the finals first, then alone
    finals_calls = [c for c in dec.calls if c["timestamps"]]
    assert [bool(c["heard"]) for c in finals_calls] == [False, True, False, True, False]


class _Squeezes(ScriptedDecoder):
    """Like Whisper at times: a window's last sentence written in a 0.3 s segment right after
    the one before it, ahead of its own audio (which then looks skipped)."""

    def decode_many(self, windows):
        from asr.segmented import Transcript

        out = []
        for t in super().decode_many(windows):
            segs = list(t.segments)
            if len(segs) >= 2:
                end = segs[-2][1]
                segs[-1] = (end, end + 0.3, segs[-1][2])
            out.append(Transcript(t.text, tuple(segs)))
        return out


def test_a_last_sentence_squeezed_into_no_time_is_heard_again_once():
    audio, _ = meeting()
    events, _ = drive(SegmentedSession(_Squeezes(), SessionOptions(partials=False)), audio)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [" ".join(map(word, u)) for u in UTTERANCES]
