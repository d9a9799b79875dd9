"""Custom vocabulary on Whisper tiny.en (the bundled default): the share of product and
people names transcribed right without a vocabulary, with it in the prompt, and with the
prompt and the snapper; plus the snapper alone (what Voxtral, which takes no hints, gets).

    python bench/vocabulary.py [--modes seek,vad,live] [--out bench/out/vocabulary] [--json OUT]

The recordings are made here, on first use, into --out (cached; remade when a text or voice
below changes): espeak-ng speaks each sentence in one of several English voices, sox makes it
16 kHz mono, and the sentences of a set are joined with 1 s pauses into one meeting:
  * names: 24 sentences holding 20 listed terms (people: Anya, Siobhan, Nguyen, ...;
    products: Kubernetes, Postgres, Grafana, ...), 54 occurrences in all;
  * control: 12 ordinary sentences with no listed term, several with words that sound like
    one ("any", "coffee", "data", "post", "terra") — where a vocabulary could only do harm.
Every run gives the whole vocabulary, as a user's config would, whatever a sentence holds.

Measured per system and mode (`seek`: what `notetaker transcribe FILE` runs; `vad`: VAD
windows; `live`: VAD windows with partials, the live path):
  * names right: listed-term occurrences of the reference that the hypothesis holds (case
    and a possessive 's aside), over all occurrences;
  * other-word WER: edits on the words that are not names (insertions next to a name count
    as the name's), over the reference's other words (tests/support/wer.py's normaliser);
  * control: WER of the control meeting and false names (listed terms in its hypothesis).
Ratios against `none` are printed side by side. Needs espeak-ng and sox.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
__import__("asr")  # BLAS set-up before numpy loads, as the product does

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from tests.support.wer import normalize  # noqa: E402

SR = 16_000
DEFAULT_OUT = ROOT / "bench" / "out" / "vocabulary"
PAUSE_S = 1.0
TERMS = ("Anya", "Siobhan", "Nguyen", "Okonkwo", "Priya", "Joaquin", "Aoife", "Kowalski", "Siddharth",
         "Kubernetes", "Postgres", "Grafana", "Terraform", "Kafka", "Datadog", "Jenkins", "Figma", "Supabase",
         "Redis", "Ansible")
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m7", "en-gb-x-rp", "en-us+m3", "en-gb-scotland+f2", "en-029")
NAMES = (
    "Anya will deploy the new Kubernetes cluster on Monday.",
    "Siobhan says the Postgres migration is blocked.",
    "Ask Nguyen to check the Grafana dashboards before the release.",
    "Okonkwo wrote the Terraform module for the staging account.",
    "Priya and Joaquin will review the Kafka consumer lag tomorrow.",
    "The Datadog alerts fired twice during the Jenkins build.",
    "Aoife finished the Figma mockups for the onboarding flow.",
    "Kowalski thinks we should move the sessions from Redis to Postgres.",
    "Siddharth is writing the Ansible playbook for the database servers.",
    "We could replace the auth service with Supabase next quarter.",
    "Can Anya and Siobhan pair on the Kubernetes upgrade?",
    "The Grafana panel shows the Kafka topic is falling behind.",
    "Nguyen asked whether Terraform can manage the Datadog monitors.",
    "Priya will present the Figma prototype to the client on Thursday.",
    "Joaquin restarted Jenkins after the disk filled up.",
    "Okonkwo and Aoife disagree about caching in Redis.",
    "Let's ask Siddharth how Ansible handles the secrets.",
    "Kowalski moved the Supabase project to the European region.",
    "The Postgres replica fell behind while Anya was on call.",
    "Thanks, Siobhan, the Kubernetes dashboard looks much better now.",
    "Nguyen and Priya will own the Grafana alerts from next week.",
    "Joaquin said the Kafka brokers need more memory.",
    "Aoife wants a Terraform plan before anyone touches production.",
    "Siddharth found the Jenkins job that was leaking Redis connections.",
)
CONTROL = (
    "Do you have any other questions before we wrap up?",
    "Let's grab a coffee after the meeting and talk about the budget.",
    "The data shows that most customers renew in the spring.",
    "Please post the notes in the channel when you are done.",
    "The new office has a terrace with a view of the river.",
    "I think the cube on the chart is the wrong color.",
    "She said the review went well and the team is happy.",
    "We need a plan for the holidays when half the team is away.",
    "The dog barked all through my call this morning.",
    "Can someone send the invoice to the finance team by Friday?",
    "Our priority is the release, and the rest can wait.",
    "He ran the numbers again and the forecast still looks good.",
)


# -- recordings --------------------------------------------------------------------------


def _say(text: str, voice: str, speed: int) -> np.ndarray:
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    raw = subprocess.run(["sox", "-R", "-t", "wav", "-", "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed",
                          "-t", "raw", "-"], input=wav, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def meeting(out: Path, name: str, sentences: tuple[str, ...]) -> tuple[np.ndarray, str]:
    """The sentences spoken in turn by the voices, joined with pauses; cached as FLAC."""
    spec = json.dumps([sentences, VOICES, PAUSE_S])
    digest = hashlib.sha256(spec.encode()).hexdigest()[:16]
    path = out / f"{name}-{digest}.flac"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        pause = np.zeros(int(PAUSE_S * SR), np.float32)
        parts = [pause]
        for i, text in enumerate(sentences):
            parts += [_say(text, VOICES[i % len(VOICES)], 150 + 10 * (i % 3)), pause]
        sf.write(str(path), np.concatenate(parts), SR, subtype="PCM_16")
    audio, _ = sf.read(str(path), dtype="float32")
    return audio, " ".join(sentences)


# -- scores --------------------------------------------------------------------------------


def _term_pattern(term: str) -> re.Pattern:
    return re.compile(r"(?<![\w])" + re.escape(term) + r"(?:'s|’s)?(?![\w])", re.IGNORECASE)


def names_right(reference: str, hypothesis: str) -> tuple[int, int]:
    """(occurrences of listed terms the hypothesis holds, occurrences in the reference)."""
    right = total = 0
    for term in TERMS:
        pattern = _term_pattern(term)
        n = len(pattern.findall(reference))
        right += min(n, len(pattern.findall(hypothesis)))
        total += n
    return right, total


def false_names(hypothesis: str) -> int:
    return sum(len(_term_pattern(t).findall(hypothesis)) for t in TERMS)


def other_word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits on the reference's non-name words, how many of those words there are): the
    word alignment's substitutions and deletions of other words, and insertions unless they
    stand next to a name (a name heard as three words is the name's error)."""
    names = {w for t in TERMS for w in normalize(t)}
    ref, hyp = normalize(reference), normalize(hypothesis)
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    i, j, errors = n, m, 0
    is_name = [w in names for w in ref]
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            errors += ref[i - 1] != hyp[j - 1] and not is_name[i - 1]
            i, j = i - 1, j - 1
        elif i > 0 and d[i, j] == d[i - 1, j] + 1:
            errors += not is_name[i - 1]
            i -= 1
        else:  # an insertion between ref words i-1 and i
            near_name = (i > 0 and is_name[i - 1]) or (i < n and is_name[i])
            errors += not near_name
            j -= 1
    return errors, sum(not x for x in is_name)


# -- runs ----------------------------------------------------------------------------------


MODES = {"seek": dict(partials=False, windowing="seek"), "vad": dict(partials=False, windowing="vad"),
         "live": dict(partials=True, windowing="vad")}


def transcribe(engine, audio: np.ndarray, mode: str, vocabulary: tuple[str, ...], snap: bool = True) -> str:
    """The finals' text; `snap=False`: the engine's session without the snapper it wraps it in."""
    from asr.base import Final, SessionOptions
    from asr.vocabulary import SnappingSession

    s = engine.start_session(SessionOptions(vocabulary=vocabulary, **MODES[mode]))
    if not snap and isinstance(s, SnappingSession):
        s = s.inner
    chunk = SR // 10 if MODES[mode]["partials"] else SR
    finals = []
    for i in range(0, len(audio), chunk):
        s.feed_audio(audio[i : i + chunk])
        while not s.idle:
            finals += [e for e in s.step() if isinstance(e, Final)]
    finals += [e for e in s.finish() if isinstance(e, Final)]
    return " ".join(f.text for f in finals)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="seek,live", help=f"comma-separated: {', '.join(MODES)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--json", type=Path, help="write the numbers here as JSON")
    p.add_argument("--show", action="store_true", help="print every hypothesis")
    args = p.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        p.error(f"unknown mode {sorted(unknown)[0]!r}")

    from asr.vocabulary import Snapper
    from asr.whisper.engine import WhisperEngine

    sets = {"names": meeting(args.out, "names", NAMES), "control": meeting(args.out, "control", CONTROL)}
    engine = WhisperEngine()
    snap = Snapper(TERMS)
    results = {}
    for mode in modes:
        for name, (audio, reference) in sets.items():
            for prompt in (False, True):
                t0 = time.perf_counter()
                hyp = transcribe(engine, audio, mode, TERMS if prompt else (), snap=False)
                elapsed = time.perf_counter() - t0
                base = "prompt" if prompt else "none"
                results[(mode, name, base)] = (hyp, elapsed)
                # The snapper as a post-pass on the same text: what the engine's session does.
                results[(mode, name, base + "+snap")] = (snap(hyp), elapsed)
    report = _report(results, sets, modes, args.show)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


SYSTEMS = ("none", "none+snap", "prompt", "prompt+snap")
LABELS = {"none": "no vocabulary", "none+snap": "snapper only (Voxtral's way)", "prompt": "vocabulary as prompt",
          "prompt+snap": "prompt + snapper"}


def _report(results, sets, modes, show: bool) -> dict:
    from tests.support.wer import wer

    report = {}
    names_ref, control_ref = sets["names"][1], sets["control"][1]
    for mode in modes:
        print(f"\n== Whisper tiny.en, {mode} ({LABELS['none']} = 1.00 for the ratios) ==")
        print(f"{'system':32} {'names right':>14} {'ratio':>6} {'other WER':>10} {'ratio':>6} "
              f"{'control WER':>12} {'false names':>12} {'time s':>7}")
        rows = {}
        for system in SYSTEMS:
            hyp, elapsed = results[(mode, "names", system)]
            chyp, _ = results[(mode, "control", system)]
            right, total = names_right(names_ref, hyp)
            errors, words = other_word_errors(names_ref, hyp)
            rows[system] = dict(names_right=right, names=total, share=right / total, other_wer=errors / words,
                                control_wer=wer([control_ref], [chyp]), false_names=false_names(chyp),
                                seconds=round(elapsed, 2))
            if show:
                print(f"  [{system}] {hyp}\n  [{system} control] {chyp}")
        base = rows["none"]
        for system, r in rows.items():
            ratio = r["share"] / base["share"] if base["share"] else float("inf")
            other_ratio = r["other_wer"] / base["other_wer"] if base["other_wer"] else float("nan")
            print(f"{LABELS[system]:32} {r['names_right']:>3}/{r['names']:<3} {r['share']:5.0%} {ratio:6.2f} "
                  f"{r['other_wer']:10.1%} {other_ratio:6.2f} {r['control_wer']:12.1%} {r['false_names']:12d} "
                  f"{r['seconds']:7.1f}")
        report[mode] = rows
    return report


if __name__ == "__main__":
    sys.exit(main())
