"""A synthetic meeting evaluation set: multi-voice meetings spoken by espeak-ng, mixed by
sox and numpy, each with its reference transcript and turn list; plus Debian's LibriVox
read speech.

    python bench/evalset.py [--out bench/out/evalset] [--shifts 0,50,100,200,350] [--force]

    from bench.evalset import evalset
    items = evalset(Path("bench/out/evalset"))  # list[Item], generated on first use

Every meeting is written once per shift (0, 50, 100, 200 and 350 ms of digital silence
prepended), as `<name>@<shift>ms.flac` (16 kHz mono 16-bit) next to `<name>@<shift>ms.json`
({file, text, turns: [{speaker, voice, start, end, text}], shift_ms, spec}; turn times are seconds
in that file). Files are regenerated only when missing or when the meeting's spec in this
script changed (a hash is kept in the JSON).

The set, 11 minutes of meetings (x 5 shifts) and 25 s of LibriVox (shift 0 only):
  * seven meetings of 27 s to 4.5 min, 2 to 5 distinct voices each (espeak-ng English
    accents with +m/+f variants, speeds 140-175 wpm);
  * gaps of 0.2-2 s between turns; three meetings with digital silence between turns,
    four with sox pink or white noise under the whole meeting (SNR 20-25 dB over the
    speech);
  * four turns over 30 s (monologues: one in an incident review, three in a briefing),
    one-word and two-word turns, long turns;
  * numbers (dates, times, amounts, percentages, version numbers) and names, written as
    Whisper usually writes them: tests/support/wer.py turns digits into words, and
    espeak-ng says "12,000 euros", "18%", "2:15" and "September 30" the way that
    normaliser reads them. Amounts are in euros: Whisper writes "$12,000" for "twelve
    thousand dollars" and the normaliser drops the "$". A version "3.7" is "three seven"
    to the normaliser and "three point seven" to espeak, so a hypothesis that spells
    "point" out costs one insertion.
Deterministic: fixed texts, fixed seeds for gaps and levels, sox in repeatable mode (-R).
Needs espeak-ng and sox; LibriVox needs pocketsphinx-testdata (left out when missing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "out" / "evalset"
SR = 16_000
SHIFTS_MS = (0, 50, 100, 200, 350)
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
GENERATOR_VERSION = 1  # bump when the synthesis below changes the audio
LEAD_S, TAIL_S = 0.5, 1.0  # silence (or noise) before the first and after the last turn
SPEECH_RMS = 0.07  # each turn's level before the speaker's gain


@dataclass(frozen=True)
class Turn:
    speaker: str
    voice: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Item:
    name: str
    shift_ms: int
    path: Path
    text: str
    turns: tuple[Turn, ...]

    @property
    def id(self) -> str:
        return f"{self.name}@{self.shift_ms}ms"


@dataclass(frozen=True)
class Speaker:
    voice: str  # espeak-ng voice, e.g. "en-us+f2"
    speed: int  # words per minute
    gain_db: float = 0.0


@dataclass(frozen=True)
class Meeting:
    name: str
    speakers: dict[str, Speaker]
    lines: tuple[tuple[str, str], ...]  # (speaker, text)
    gaps: tuple[float, float] = (0.2, 2.0)  # seconds between turns, drawn uniformly
    noise: str | None = None  # sox noise type under the whole meeting
    snr_db: float = 0.0
    seed: int = 0


# -- the meetings (all text written for this set) ---------------------------------------

MEETINGS: tuple[Meeting, ...] = (
    Meeting(
        name="standup",
        speakers={"Tom": Speaker("en-us+m3", 165), "Priya": Speaker("en+f3", 150, -3.0),
                  "Marcus": Speaker("en-029+m7", 170, 2.0)},
        gaps=(0.2, 0.9), seed=11,
        lines=(
            ("Tom", "Morning everyone. Quick standup today, I have a hard stop at ten."),
            ("Priya", "Yesterday I finished the new login page. Today I am fixing the password reset emails. "
                      "The release notes for version 1.8 are in the shared folder, please have a look."),
            ("Tom", "Any blockers?"),
            ("Priya", "No."),
            ("Marcus", "I am still waiting for access to the staging database. Can someone approve my request?"),
            ("Tom", "Sure, I will do it right after this call."),
            ("Marcus", "Thanks."),
            ("Tom", "Great. That's it for today."),
        ),
    ),
    Meeting(
        name="decision",
        speakers={"Anna": Speaker("en-us+f2", 160), "David": Speaker("en-gb-x-rp+m1", 145, -2.0)},
        gaps=(0.3, 1.5), noise="whitenoise", snr_db=25.0, seed=12,
        lines=(
            ("Anna", "So do we ship the Atlas update, version 2.4, on Thursday, or wait until Monday?"),
            ("David", "Thursday. The last three test runs all passed, and support is ready."),
            ("Anna", "Okay. Thursday it is. I will tell the customers tomorrow morning."),
            ("David", "One more thing, please keep the rollback script ready, just in case."),
            ("Anna", "Sounds good."),
            ("David", "Yes."),
        ),
    ),
    Meeting(
        name="hiring",
        speakers={"Sarah": Speaker("en+f4", 155), "James": Speaker("en-us+m2", 150, -4.0)},
        gaps=(0.4, 2.0), seed=13,
        lines=(
            ("Sarah", "Let's talk about hiring. We have budget for two backend engineers this quarter."),
            ("James", "I interviewed four candidates last week. Two of them were strong, especially Elena Novak."),
            ("Sarah", "What did you like about her?"),
            ("James", "She has seven years of experience with distributed systems, and her take home project "
                      "was the cleanest we have seen."),
            ("Sarah", "Good. What salary is she asking for?"),
            ("James", "Around 145,000 euros, which is within our range."),
            ("Sarah", "Then let's make an offer by Wednesday. Can you also schedule a second round for the "
                      "other candidate?"),
            ("James", "Yes, I will send the invite today."),
            ("Sarah", "Perfect."),
        ),
    ),
    Meeting(
        name="budget",
        speakers={"Laura": Speaker("en-gb-scotland+f3", 150), "Ben": Speaker("en-us+m4", 160, -2.0),
                  "Kim": Speaker("en+f5", 170, 1.0)},
        gaps=(0.2, 1.6), noise="pinknoise", snr_db=22.0, seed=14,
        lines=(
            ("Laura", "Thanks for joining the budget review. Finance wants our numbers for the third quarter "
                      "by Friday."),
            ("Ben", "Our cloud costs went up by 18% last month, mostly because of the new analytics cluster."),
            ("Laura", "How much are we spending on it now?"),
            ("Ben", "About 12,000 euros a month. If we move the nightly jobs to spot instances, we could save "
                    "roughly 30%."),
            ("Kim", "Marketing also asked for an extra 20,000 euros for the conference in October."),
            ("Laura", "That is a lot. What do we get for it?"),
            ("Kim", "A booth, two talks, and a list of around 500 qualified leads, based on last year."),
            ("Laura", "Okay. I will approve the conference, but I want the cloud savings plan first."),
            ("Ben", "Fair enough."),
            ("Laura", "Ben, please send the plan by Tuesday. Kim, share last year's lead numbers with me."),
            ("Kim", "Will do."),
        ),
    ),
    Meeting(
        name="incident",
        speakers={"Raj": Speaker("en-us+m1", 155), "Olivia": Speaker("en+f2", 145, -2.0),
                  "Chen": Speaker("en-us-nyc+m6", 165, 1.0), "Emma": Speaker("en-gb-x-rp+f4", 160, -1.0)},
        gaps=(0.3, 2.0), seed=15,
        lines=(
            ("Raj", "Let's start the incident review for Saturday's outage. Olivia, can you walk us through "
                    "the timeline?"),
            ("Olivia", "Sure. At 2:15 in the morning, the payment service started returning errors. Our alerts "
                       "fired about four minutes later, and I was paged at 2:20. The root cause was a "
                       "configuration change in version 3.7 of the gateway, which lowered the connection limit "
                       "from 500 to 50. Under normal traffic that was fine, but the nightly batch jobs opened "
                       "hundreds of connections at once. I rolled back to version 3.6 at 2:48, and error rates "
                       "returned to normal within ten minutes. In total, about 1,200 customers saw failed "
                       "payments, and none of them were charged twice."),
            ("Raj", "Thanks, Olivia. Why did the change pass code review?"),
            ("Chen", "The limit was set in a shared file, and the test environment only runs with 20 "
                     "connections, so nothing failed."),
            ("Emma", "We should load test every gateway release before it reaches production."),
            ("Raj", "Agreed. Action items: Chen adds a load test to the pipeline, Emma writes the customer "
                    "update, and Olivia documents the rollback steps."),
            ("Olivia", "Got it."),
            ("Chen", "Yes."),
            ("Emma", "I will have the draft ready by noon."),
        ),
    ),
    Meeting(
        name="roadmap",
        speakers={"Mia": Speaker("en-us+f3", 150), "Noah": Speaker("en+m3", 165, -2.0),
                  "Grace": Speaker("en-029+f2", 155, 1.0), "Leo": Speaker("en-us-nyc+m5", 160, -1.0),
                  "Zoe": Speaker("en-gb-x-rp+f5", 175, 2.0)},
        gaps=(0.2, 2.0), noise="pinknoise", snr_db=20.0, seed=16,
        lines=(
            ("Mia", "Okay, let's get started. The goal today is to agree on the roadmap for the third quarter "
                    "and decide what we drop. We have twelve weeks and, realistically, capacity for three big "
                    "projects."),
            ("Noah", "Before we start, can I share the numbers from the customer survey?"),
            ("Mia", "Please."),
            ("Noah", "We got 842 responses. The top request, from 61% of customers, is offline mode for the "
                     "mobile app. Second is better search, at 47%. Only 12% asked for new dashboard themes."),
            ("Grace", "That matches what support sees. Offline mode comes up in almost every call with our "
                      "field teams."),
            ("Leo", "Offline mode is also the hardest one. We need a local database, a sync protocol and "
                    "conflict handling. My estimate is six to eight weeks for two engineers."),
            ("Mia", "And search?"),
            ("Leo", "Search is smaller. We already index everything, we just rank it badly. Three weeks, maybe "
                    "four with testing."),
            ("Zoe", "From the design side, the mockups for search are ready. For offline mode we still need to "
                    "figure out how to show the sync status without scaring people."),
            ("Mia", "Good point. Grace, how often do users actually lose their connection?"),
            ("Grace", "For field teams, several times a day. Some of them work in basements and warehouses "
                      "with no signal at all."),
            ("Noah", "Then I would put offline mode first and search second. The dashboard themes can wait "
                     "until next year."),
            ("Zoe", "I am fine with that, but the themes were promised to Brightline in their contract renewal."),
            ("Mia", "When is that renewal?"),
            ("Zoe", "September 30."),
            ("Mia", "Then let's deliver a minimal version for Brightline only: two themes, no editor. Leo, is "
                    "that realistic?"),
            ("Leo", "Yes. If Zoe gives us the colors by the end of July, that is about one week of work."),
            ("Zoe", "Deal."),
            ("Noah", "One question on the mobile side. Do we still support Android 9?"),
            ("Leo", "Only until version 5.2 of the app. About 4% of our users are still on it, and it slows "
                    "down every release."),
            ("Mia", "Then we announce the end of support in the release notes for 5.2 and drop it in January."),
            ("Grace", "Please give support at least two months of notice, so we can warn the customers who are "
                      "affected."),
            ("Mia", "Fair. Let's say November 15, and Grace owns the customer message."),
            ("Grace", "Okay."),
            ("Mia", "Now the risks. What worries you most?"),
            ("Leo", "The sync protocol. If we get conflict handling wrong, people lose data, and that is much "
                    "worse than having no offline mode at all. I would like to spend the first two weeks on a "
                    "prototype and try it with five customers before we commit to the design. If the "
                    "prototype fails, we fall back to a read only offline mode, which still helps most field "
                    "teams."),
            ("Noah", "Which customers?"),
            ("Grace", "I can pick five from the survey who volunteered for early access."),
            ("Mia", "Great. What about money? We have 90,000 euros left for contractors this year."),
            ("Noah", "I would spend about half of it on a contractor for search, so Leo's team can focus on the "
                     "offline work."),
            ("Leo", "One concern with a contractor: they will need access to production logs to tune the "
                    "ranking. Security will want a review first, and that usually takes two weeks."),
            ("Mia", "Then start the review now, in parallel with the contract. I don't want search to wait on "
                    "paperwork."),
            ("Mia", "Okay, let me summarize the decisions. First, offline mode is the main project for the "
                    "quarter, starting with a two week prototype. Second, the search improvements run in "
                    "parallel with a contractor. Third, a minimal theme release for Brightline by September "
                    "30. Everything else moves to next year."),
            ("Grace", "Sounds good."),
            ("Leo", "Agreed."),
            ("Mia", "Action items. Leo writes the prototype plan by Friday. Grace picks the five test "
                    "customers. Zoe sends the theme colors by July 31. Noah finds a search contractor and "
                    "shares two quotes next week. We meet again in two weeks. Thanks, everyone."),
            ("Zoe", "Thanks, bye."),
        ),
    ),
    Meeting(
        name="briefing",
        speakers={"Hannah": Speaker("en-gb-x-rp+m2", 150), "Omar": Speaker("en-us+m7", 160, -1.0),
                  "Ines": Speaker("en-gb-scotland+f1", 145, 1.0)},
        gaps=(0.4, 1.2), noise="whitenoise", snr_db=24.0, seed=17,
        lines=(
            ("Hannah", "Welcome to the quarterly operations briefing. I will start with the warehouse "
                       "numbers and then hand over to Omar for logistics. In the last three months we shipped "
                       "48,000 orders from the Leeds warehouse, which is 9% more than in the spring. Returns "
                       "fell to 3.5% of orders, the lowest rate since we opened the site. The new packing line "
                       "went live on July 14, two weeks later than planned, because the conveyor parts arrived "
                       "late from the supplier in Rotterdam. Since then it has handled about 60% of all "
                       "parcels, and the average packing time dropped from eleven minutes to seven. Staff "
                       "turnover is still our biggest problem: we hired 23 people and lost 17."),
            ("Omar", "Thanks, Hannah."),
            ("Omar", "On the logistics side, the main change was the move to two carriers. Northway now "
                     "takes everything under five kilos and Baltic Freight handles the pallets. Delivery "
                     "within two days went from 81% to 88% of orders. Costs per parcel went down by 40 cents, "
                     "but pallet costs went up, mostly because of fuel surcharges in August and September. "
                     "Overall we spent 1.3 million euros on shipping, almost exactly the budget. For the "
                     "next quarter I want to test Sunday collections in Manchester and Glasgow, starting on "
                     "November 3, and I would like Ines to help with the customer notices."),
            ("Ines", "Happy to. How many customers are in those two cities?"),
            ("Omar", "About 6,500 active customers."),
            ("Ines", "Then here is what I suggest. We send a short email a week before the first Sunday, "
                     "explaining the new collection times and how to choose them at checkout. We add a line "
                     "to the order confirmation, and we brief the support team so they can answer questions "
                     "from the first day. If fewer than 10% of customers choose Sunday in the first month, we "
                     "stop the test and keep the money for the Christmas peak. I can have the text ready by "
                     "October 20 and send it to both of you for review."),
            ("Hannah", "Good. Please do."),
        ),
    ),
)


# -- synthesis ---------------------------------------------------------------------------

def _run(cmd: list[str], stdin: bytes | None = None) -> bytes:
    return subprocess.run(cmd, input=stdin, capture_output=True, check=True).stdout


def speak(text: str, speaker: Speaker) -> np.ndarray:
    """One turn: espeak-ng at 22.05 kHz, resampled by sox to 16 kHz float32, edges trimmed,
    scaled to SPEECH_RMS times the speaker's gain."""
    wav = _run(["espeak-ng", "-v", speaker.voice, "-s", str(speaker.speed), "--stdout", text])
    raw = _run(["sox", "-R", "-t", "wav", "-", "-t", "raw", "-e", "floating-point", "-b", "32",
                "-r", str(SR), "-c", "1", "-"], wav)
    audio = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    audio = audio[loud[0] : loud[-1] + 1]
    rms = float(np.sqrt(np.mean(audio**2)))
    return audio * (SPEECH_RMS / rms * 10 ** (speaker.gain_db / 20))


def sox_noise(kind: str, samples: int, seed: int) -> np.ndarray:
    """sox's noise in repeatable mode; the first `seed` tenths of a second are skipped so each
    meeting hears a different stretch."""
    skip = seed * SR // 10
    raw = _run(["sox", "-R", "-n", "-t", "raw", "-e", "floating-point", "-b", "32", "-r", str(SR), "-c", "1",
                "-", "synth", f"{(samples + skip) / SR + 1:.3f}", kind, "vol", "0.5"])
    noise = np.frombuffer(raw, dtype="<f4")[skip : skip + samples].astype(np.float32)
    assert len(noise) == samples
    return noise


def render(meeting: Meeting, voices: list[np.ndarray]) -> tuple[np.ndarray, list[Turn]]:
    """Lay the spoken turns out with the meeting's gaps and mix its noise under everything."""
    rng = random.Random(meeting.seed)
    turns: list[Turn] = []
    pieces: list[np.ndarray] = [np.zeros(int(LEAD_S * SR), np.float32)]
    pos = len(pieces[0])
    for i, ((who, text), audio) in enumerate(zip(meeting.lines, voices)):
        if i:
            gap = np.zeros(int(round(rng.uniform(*meeting.gaps) * SR)), np.float32)
            pieces.append(gap)
            pos += len(gap)
        turns.append(Turn(who, meeting.speakers[who].voice, round(pos / SR, 3), round((pos + len(audio)) / SR, 3),
                          text))
        pieces.append(audio)
        pos += len(audio)
    pieces.append(np.zeros(int(TAIL_S * SR), np.float32))
    mix = np.concatenate(pieces)
    if meeting.noise:
        speech_rms = float(np.sqrt(np.mean(np.concatenate(voices) ** 2)))
        noise = sox_noise(meeting.noise, len(mix), meeting.seed)
        noise *= speech_rms / 10 ** (meeting.snr_db / 20) / float(np.sqrt(np.mean(noise**2)))
        mix = mix + noise
    peak = float(np.max(np.abs(mix)))
    if peak > 0.95:  # never clip: scale the whole meeting down (turn times are unchanged)
        mix *= 0.95 / peak
    return mix.astype(np.float32), turns


def spec_hash(meeting: Meeting) -> str:
    blob = json.dumps([GENERATOR_VERSION, asdict(meeting)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- the cache on disk -----------------------------------------------------------------

def _write(out_dir: Path, name: str, shift_ms: int, audio: np.ndarray, turns: list[Turn], spec: str) -> Item:
    pad = np.zeros(int(round(shift_ms * SR / 1000)), np.float32)
    shift_s = len(pad) / SR
    shifted = [Turn(t.speaker, t.voice, round(t.start + shift_s, 3), round(t.end + shift_s, 3), t.text)
               for t in turns]
    item = Item(name, shift_ms, out_dir / f"{name}@{shift_ms}ms.flac", " ".join(t.text for t in turns),
                tuple(shifted))
    sf.write(str(item.path), np.concatenate([pad, audio]), SR, subtype="PCM_16")
    meta = {"file": item.path.name, "text": item.text, "turns": [asdict(t) for t in shifted],
            "shift_ms": shift_ms, "spec": spec}
    item.path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return item


def _read(path: Path, name: str, shift_ms: int, spec: str | None) -> Item | None:
    """The cached item, or None when it is missing or was made from another spec."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    if spec is not None and meta.get("spec") != spec:
        return None
    return Item(name, shift_ms, path, meta["text"], tuple(Turn(**t) for t in meta["turns"]))


def _meeting_items(out_dir: Path, meeting: Meeting, shifts: tuple[int, ...], force: bool,
                   pool: ThreadPoolExecutor) -> list[Item]:
    spec = spec_hash(meeting)
    cached = {s: None if force else _read(out_dir / f"{meeting.name}@{s}ms.flac", meeting.name, s, spec)
              for s in shifts}
    if all(cached.values()):
        return [cached[s] for s in shifts]  # type: ignore[misc]
    voices = list(pool.map(lambda line: speak(line[1], meeting.speakers[line[0]]), meeting.lines))
    audio, turns = render(meeting, voices)
    return [cached[s] or _write(out_dir, meeting.name, s, audio, turns, spec) for s in shifts]


def librivox_items(out_dir: Path, force: bool = False) -> list[Item]:
    """Debian's five LibriVox utterances (pocketsphinx-testdata), shift 0, one turn each."""
    if not LIBRIVOX.is_dir():
        return []
    items = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        utt = line.rpartition("(")[2].strip(") ")
        text = line.rpartition("(")[0].replace("<s>", "").replace("</s>", "").strip()
        name = "librivox-" + utt.rpartition("-")[2]
        item = None if force else _read(out_dir / f"{name}@0ms.flac", name, 0, None)
        if item is None:
            audio, sr = sf.read(str(LIBRIVOX / f"{utt}.wav"), dtype="float32")
            assert sr == SR and audio.ndim == 1
            turn = Turn("reader", "librivox", 0.0, round(len(audio) / SR, 3), text)
            item = _write(out_dir, name, 0, audio, [turn], "librivox")
        items.append(item)
    return items


def evalset(out_dir: Path = DEFAULT_OUT, shifts: tuple[int, ...] = SHIFTS_MS, librivox: bool = True,
            force: bool = False) -> list[Item]:
    """All items (meetings x shifts, then LibriVox), generating whatever is missing or stale."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install espeak-ng sox)")
    out_dir.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for meeting in MEETINGS:
            items += _meeting_items(out_dir, meeting, tuple(shifts), force, pool)
    if librivox:
        items += librivox_items(out_dir, force)
    return items


def duration_s(item: Item) -> float:
    return sf.info(str(item.path)).duration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--shifts", default=",".join(map(str, SHIFTS_MS)), help="milliseconds, comma-separated")
    ap.add_argument("--force", action="store_true", help="regenerate everything")
    args = ap.parse_args()
    t = time.perf_counter()
    items = evalset(args.out, tuple(int(s) for s in args.shifts.split(",")), force=args.force)
    took = time.perf_counter() - t
    print(f"{'item':24} {'audio':>7} {'turns':>5} {'voices':>6} {'words':>5}")
    for it in items:
        print(f"{it.id:24} {duration_s(it):6.1f}s {len(it.turns):5d} {len({t.voice for t in it.turns}):6d} "
              f"{len(it.text.split()):5d}")
    base = [it for it in items if it.shift_ms == 0]
    print(f"{len(items)} items in {args.out}; shift-0 audio {sum(map(duration_s, base)) / 60:.1f} min "
          f"(meetings {sum(duration_s(i) for i in base if not i.name.startswith('librivox')) / 60:.1f} min); "
          f"{took:.1f} s")


if __name__ == "__main__":
    main()
