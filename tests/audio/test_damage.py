"""Files damaged part-way: read past the damage, keep the timeline, say what was lost.

What libsndfile 1.2.2 allows, and so what is asserted here:
- FLAC: a fresh handle seeks past the damage; the audio after it is sample-exact where it
  was in the whole file, and the stretch between is silence.
- MP3: decoding starts again at the next run of valid frames, placed by the frames lost;
  exact at a constant bitrate (with or without a Xing frame), within a frame for VBR.
- OGG: libvorbisfile drops the damaged pages itself; the file reads short of its header.
- libmpg123 prints nothing on fd 2, while other output on fd 2 passes.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from notetaker.audio import SAMPLE_RATE, AudioError, open_audio, read_audio
from notetaker.audio.file import _NATIVE_STDERR, MAX_RATE, MIN_RATE, path_text

from .conftest import sox

SECONDS = 12.0
# A sweep and noise: any shift of the timeline after the damage shows in a comparison.
SIGNAL = ("synth", f"{SECONDS:g}", "sine", "100-6000", "whitenoise", "remix", "1v0.4,2v0.1", "1v0.2,2v0.2")


def damage(src: Path, dst: Path, *fractions: float, size: int = 4096) -> Path:
    """`src` with `size` bytes of junk at each fraction of its length."""
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(11)
    for fraction in fractions:
        at = int(len(data) * fraction)
        data[at : at + size] = rng.bytes(size)
    dst.write_bytes(bytes(data))
    return dst


def decode(path: Path):
    with open_audio(path) as audio:
        out = np.concatenate(list(audio.blocks(1.0)))
    return out, audio


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("whole")
    files = {}
    for ext in ("flac", "mp3", "ogg"):
        files[ext] = folder / f"whole.{ext}"
        sox("-n", "-r", "44100", "-c", "2", files[ext], *SIGNAL)
    # libsndfile's own MP3 writer (LAME) puts a Xing frame with a LAME tag first, as most
    # encoders do: constant and variable bitrate.
    pcm, rate = sf.read(str(files["flac"]), dtype="float32")
    for mode in ("CONSTANT", "VARIABLE"):
        path = folder / f"xing-{mode.lower()}.mp3"
        sf.write(str(path), pcm, rate, format="MP3", bitrate_mode=mode)
        assert b"Xing" in path.read_bytes()[:200] or b"Info" in path.read_bytes()[:200]
        files[f"xing-{mode.lower()}"] = path
    return files


def gap_end(audio) -> int:
    """Where the last gap ends, in 16 kHz samples."""
    start, length = audio.gaps[-1]
    return int(np.ceil((start + length) / audio.native_rate * SAMPLE_RATE))


def lag(part: np.ndarray, ref: np.ndarray, at: int, search: int = 1200) -> int:
    """How many samples `part` is shifted against `ref` around `at`."""
    seg = part[at : at + SAMPLE_RATE]
    return max(range(-search, search + 1), key=lambda k: float(np.dot(ref[at + k : at + k + len(seg)], seg)))


def test_flac_is_read_past_the_damage_sample_exact(whole: dict[str, Path], tmp_path: Path) -> None:
    ref = read_audio(whole["flac"])
    out, audio = decode(damage(whole["flac"], tmp_path / "damaged.flac", 0.3))
    assert len(out) == len(ref)
    assert len(audio.gaps) == 1 and audio.stopped is None
    start, length = audio.gaps[0]
    assert 0.25 * SECONDS < start / audio.native_rate < 0.35 * SECONDS
    assert length / audio.native_rate < 0.6  # 4 KB of a 700 kbit/s FLAC is ~50 ms; we lose a few frames
    # After the gap (and the resampler's settling), the very samples of the whole file.
    after = gap_end(audio) + 256
    assert np.max(np.abs(out[after:] - ref[after:])) <= 1e-6
    # In the gap, silence (but for the resampler's ringing at its edges).
    a, b = int(start / audio.native_rate * SAMPLE_RATE) + 256, gap_end(audio) - 256
    assert b <= a or np.max(np.abs(out[a:b])) < 1e-3
    assert audio.damage is not None and "could not be decoded" in audio.damage and "silence" in audio.damage
    assert audio.notes() == [(start / audio.native_rate, audio.damage)]


def test_flac_damaged_in_three_places(whole: dict[str, Path], tmp_path: Path) -> None:
    ref = read_audio(whole["flac"])
    out, audio = decode(damage(whole["flac"], tmp_path / "damaged.flac", 0.2, 0.5, 0.8, size=3000))
    assert len(out) == len(ref)
    assert len(audio.gaps) == 3
    assert audio.damage.startswith("3 damaged stretches")
    after = gap_end(audio) + 256
    assert np.max(np.abs(out[after:] - ref[after:])) <= 1e-6


def test_damaged_flac_reads_again(whole: dict[str, Path], tmp_path: Path) -> None:
    """libFLAC is left aborted by the damage: a second pass opens the file again."""
    path = damage(whole["flac"], tmp_path / "damaged.flac", 0.5)
    with open_audio(path) as audio:
        first = np.concatenate(list(audio.blocks(1.0)))
        second = np.concatenate(list(audio.blocks(1.0)))
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", ["mp3", "xing-constant"])
def test_constant_bitrate_mp3_is_read_past_the_damage_in_place(
    whole: dict[str, Path], tmp_path: Path, name: str
) -> None:
    ref = read_audio(whole[name])
    out, audio = decode(damage(whole[name], tmp_path / "damaged.mp3", 0.3))
    assert len(audio.gaps) == 1 and audio.stopped is None
    # Length: all of it (a tail decoded on its own keeps its last frame's padding: < 1 frame).
    assert abs(len(out) - len(ref)) <= 1152 * SAMPLE_RATE / 44100 + 1
    # libmpg123 starts cold at the next frame: with no bit reservoir its first two frames or
    # so come out silent; from 0.1 s on, the very samples of the whole file's decode.
    after, end = gap_end(audio) + SAMPLE_RATE // 10, min(len(out), len(ref)) - 800
    assert np.max(np.abs(out[after:end] - ref[after:end])) <= 1e-4


def test_variable_bitrate_mp3_lands_within_a_frame(whole: dict[str, Path], tmp_path: Path) -> None:
    ref = read_audio(whole["xing-variable"])
    out, audio = decode(damage(whole["xing-variable"], tmp_path / "damaged.mp3", 0.3))
    assert len(audio.gaps) == 1 and audio.stopped is None
    frame = 1152 * SAMPLE_RATE // 44100
    assert abs(lag(out, ref, gap_end(audio) + SAMPLE_RATE)) <= frame  # lost frames guessed from their bytes
    assert abs(len(out) - len(ref)) <= 2 * frame  # the Xing frame's length lets the tail read to the end


def test_mp3_that_stops_quietly_at_junk_is_read_on(whole: dict[str, Path], tmp_path: Path) -> None:
    """libsndfile asks libmpg123 to stop where a stream seems to change: a frame turned into
    the header of another stream (here 48 kHz) ends the decode with no error at all."""
    from notetaker.audio.file import _mpeg_frame

    data = bytearray(whole["mp3"].read_bytes())
    at = 0
    while at < len(data) // 2:
        at += _mpeg_frame(data, at)[0]
    length = _mpeg_frame(data, at)[0]
    data[at : at + length] = bytes([0xFF, 0xFB, 0x94, 0x64]) + bytes(length - 4)
    path = tmp_path / "changed.mp3"
    path.write_bytes(bytes(data))
    with sf.SoundFile(str(path)) as f:  # libsndfile alone: half the file, and no error
        assert len(f.read(dtype="float32")) < 0.6 * SECONDS * 44100

    ref = read_audio(whole["mp3"])
    out, audio = decode(path)
    assert abs(len(out) - len(ref)) <= 1152 * SAMPLE_RATE / 44100 + 1
    [(start, length)] = audio.gaps
    assert length <= 2 * 1152 and audio.damage.startswith("0.0")  # one frame: "0.03 s at 0:06.0 ..."
    after, end = gap_end(audio) + SAMPLE_RATE // 10, len(ref) - 800
    assert np.max(np.abs(out[after:end] - ref[after:end])) <= 1e-4


def test_mp3_prints_nothing(whole: dict[str, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = damage(whole["mp3"], tmp_path / "damaged.mp3", 0.3, 0.6)
    out, audio = decode(path)
    assert len(audio.gaps) == 2
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_other_output_passes_while_libmpg123_is_silenced(capfd: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()

    def talk() -> None:
        for i in range(200):
            os.write(2, f"line {i}\n".encode())
        stop.set()

    thread = threading.Thread(target=talk)
    thread.start()
    while not stop.is_set():
        with _NATIVE_STDERR.quiet():
            os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 1.\n")
            os.write(2, b"[src/libmpg123/parse.c:wetwork():1349] error: Giving up resync after 1024 bytes\n")
    thread.join()
    err = capfd.readouterr().err
    # Every line of the other thread arrives whole, none of libmpg123's does; lines written
    # while the pipe held fd 2 are passed on after it, so order across that edge may change.
    assert sorted(err.splitlines()) == sorted(f"line {i}" for i in range(200))


def test_ogg_damage_reads_short_of_its_header(whole: dict[str, Path], tmp_path: Path) -> None:
    out, audio = decode(damage(whole["ogg"], tmp_path / "damaged.ogg", 0.3, size=20_000))
    assert audio.gaps == [] and audio.stopped is None
    assert audio.expected_frames == SECONDS * 44100
    assert len(out) < (SECONDS - 0.25) * SAMPLE_RATE
    assert audio.damage == (f"read {audio.decoded_s:.1f} s of the {SECONDS:.1f} s its header gives: "
                            "the file is cut short or damaged")


def test_a_reader_that_stops_early_is_no_damage(whole: dict[str, Path]) -> None:
    """The user ending a meeting part-way through a file reads less than its header gives:
    that is no file "cut short or damaged"."""
    with open_audio(whole["flac"]) as audio:
        blocks = audio.blocks(0.5)
        for _ in range(3):
            next(blocks)
        blocks.close()
        assert audio.decoded_s < SECONDS - 1 and not audio.read_to_end
        assert audio.notes() == [] and audio.damage is None
        assert sum(len(b) for b in audio.blocks(0.5)) == pytest.approx(SECONDS * SAMPLE_RATE, abs=2)
        assert audio.read_to_end and audio.notes() == []


def test_cut_mp3_with_a_xing_frame_is_flagged(whole: dict[str, Path], tmp_path: Path) -> None:
    data = whole["xing-constant"].read_bytes()
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[: len(data) // 2])
    out, audio = decode(path)
    assert audio.expected_frames is not None
    assert audio.damage is not None and f"of the {SECONDS:.1f} s its header gives" in audio.damage
    assert len(out) == pytest.approx(SECONDS / 2 * SAMPLE_RATE, rel=0.05)


def test_cut_flac_notes_where_audio_ends(whole: dict[str, Path], tmp_path: Path) -> None:
    data = whole["flac"].read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) * 2 // 5])
    out, audio = decode(path)
    assert audio.stopped is not None and audio.gaps == []
    [(t, text)] = audio.notes()
    assert t == pytest.approx(len(out) / SAMPLE_RATE, abs=0.01)
    assert text == f"read {t:.1f} s of {SECONDS:.1f} s: the file is damaged after that"


# -- sample rates in the header --------------------------------------------------------------


def with_rate(src: Path, dst: Path, rate: int) -> Path:
    data = bytearray(src.read_bytes())
    fmt = data.index(b"fmt ")
    struct.pack_into("<I", data, fmt + 12, rate)
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rate") / "short.wav"
    sox("-n", "-r", "16000", "-c", "1", "-b", "16", path, "synth", "1", "sine", "440")
    return path


@pytest.mark.parametrize("rate", [1, 999, MAX_RATE + 1, 2**31 - 1])
def test_absurd_sample_rate_is_one_line(short_wav: Path, tmp_path: Path, rate: int) -> None:
    path = with_rate(short_wav, tmp_path / "rate.wav", rate)
    with pytest.raises(AudioError) as err:
        open_audio(path)
    message = str(err.value)
    assert message == (f"{path}: damaged header: it gives a sample rate of {rate} Hz "
                       "(a recording has 1 kHz to 768 kHz)")


@pytest.mark.parametrize("rate", [MIN_RATE, MAX_RATE])
def test_the_bounds_themselves_open(short_wav: Path, tmp_path: Path, rate: int) -> None:
    out, audio = decode(with_rate(short_wav, tmp_path / "rate.wav", rate))
    assert audio.native_rate == rate
    assert len(out) == round(16000 * SAMPLE_RATE / rate)


# -- names and levels ----------------------------------------------------------------------------


def test_a_name_that_is_not_utf8(short_wav: Path, tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("Windows names are UTF-16")
    raw = os.fsencode(tmp_path) + b"/r\xe9union \xff.wav"
    with open(raw, "wb") as f:
        f.write(short_wav.read_bytes())
    name = os.fsdecode(raw)  # what argv gives Python: the bytes as surrogates
    assert len(read_audio(name)) == SAMPLE_RATE
    assert path_text(name).endswith("/r\\xe9union \\xff.wav")
    with pytest.raises(AudioError) as err:
        open_audio(name + ".missing")
    assert str(err.value).endswith("r\\xe9union \\xff.wav.missing: no such file")
    str(err.value).encode("utf-8")  # prints and stores anywhere


def test_speech_level_audio_is_measured(tmp_path: Path) -> None:
    noise = tmp_path / "noise.wav"
    sox("-n", "-r", "16000", "-c", "1", noise, "synth", "3", "pinknoise", "vol", "0.3")
    _, audio = decode(noise)
    assert audio.loud_s == pytest.approx(3.0)
    assert -30 < audio.loud_dbfs < -18
    assert audio.notes(recognised=True) == []
    [(t, text)] = audio.notes(recognised=False)
    assert t == 0.0 and text.startswith("no speech recognised, though 3.0 s of the audio is at speech level")

    quiet = tmp_path / "quiet.wav"
    sox("-n", "-r", "16000", "-c", "1", quiet, "synth", "3", "pinknoise", "vol", "0.003")
    _, audio = decode(quiet)
    assert audio.loud_s == 0.0 and audio.notes(recognised=False) == []
