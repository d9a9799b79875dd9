"""What the rest of notetaker knows about Qwen3-ASR: names, layouts, memory formula,
catalogue. Cheap to import (no MLX); the engine and loaders import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from asr.base import Capabilities, ModelNotFoundError
from asr.qwen3.config import LANGUAGE_NAMES
from asr.runtime.family import CatalogueModel, FamilySpec
from asr.runtime.family import weights_summary as _w

NAMES = {
    "qwen3-asr-0.6b": "Qwen/Qwen3-ASR-0.6B",
    "qwen3-asr-1.7b": "Qwen/Qwen3-ASR-1.7B",
    "qwen3-asr-0.6b-8bit": "mlx-community/Qwen3-ASR-0.6B-8bit",
    "qwen3-asr-0.6b-4bit": "mlx-community/Qwen3-ASR-0.6B-4bit",
    "qwen3-asr-1.7b-8bit": "mlx-community/Qwen3-ASR-1.7B-8bit",
    "qwen3-asr-1.7b-4bit": "mlx-community/Qwen3-ASR-1.7B-4bit",
}
DEFAULT_MODEL = "qwen3-asr-0.6b-8bit"

PROMPT_TOKENS = 1024  # Qwen3-ASR's KV bound: 30 s of audio (390 tokens), context and answer
MAX_CHUNKS = 30  # 1 s conv chunks in its longest (30 s) utterance


def working(q: Mapping[str, int], item: int) -> tuple[int, int]:
    """(KV bytes, activation bytes) of Qwen3-ASR: the decoder cache for one utterance's prompt
    and answer; for a 30 s utterance the peak of its conv stem, then one row of logits.

    The stem's peak is the second conv: MLX's CPU conv2d holds its input (the first conv's
    output), a zero-padded copy, the im2col patches (9 values per output pixel; a quarter of
    the pixels) and its output at once — 805 MiB measured for 0.6B in float32."""
    kv = 2 * q["text_layers"] * q["text_kv_heads"] * q["head_dim"] * PROMPT_TOKENS * item
    f, t = q["mel_bins"] // 2, q["chunk_frames"] // 2  # after the first stride-2 conv
    conv1 = MAX_CHUNKS * q["conv_hidden"] * f * t * item
    padded = conv1 * (f + 2) * (t + 2) // (f * t)
    conv_peak = conv1 + padded + conv1 * 9 // 4 + conv1 // 4
    ffn = MAX_CHUNKS * q["tokens_per_chunk"] * q["audio_ffn"] * item
    return kv, max(conv_peak, ffn) + q["vocab"] * 4


def shape(folder: Path) -> dict[str, int]:
    from asr.qwen3.config import Qwen3ASRConfig
    from asr.runtime.footprint import read_json_object

    path = folder / "config.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{folder} has no config.json")
    return shape_of(Qwen3ASRConfig.from_dict(read_json_object(path), str(path)))


def shape_of(cfg) -> dict[str, int]:
    """The numbers of a Qwen3ASRConfig that `working` reads."""
    t, a = cfg.text, cfg.audio
    return {"text_layers": t.num_hidden_layers, "text_kv_heads": t.num_key_value_heads, "head_dim": t.head_dim,
            "vocab": t.vocab_size, "conv_hidden": a.downsample_hidden_size, "mel_bins": a.num_mel_bins,
            "chunk_frames": a.chunk_frames, "tokens_per_chunk": a.tokens_per_chunk,
            "audio_ffn": a.encoder_ffn_dim}  # fmt: skip


def claims_files(folder: Path) -> bool:
    return False  # known by its config.json


def claims_config(folder: Path, config: dict[str, Any]) -> bool:
    model_type = config.get("model_type")
    return model_type == "qwen3_asr" or (model_type is None and "thinker_config" in config)


MB = 10**6
_SHAPE_06 = {"text_layers": 28, "text_kv_heads": 8, "head_dim": 128, "vocab": 151936, "conv_hidden": 480,
             "mel_bins": 128, "chunk_frames": 100, "tokens_per_chunk": 13, "audio_ffn": 3584}  # fmt: skip
_SHAPE_17 = {**_SHAPE_06, "audio_ffn": 4096}
_LANGS = "30 languages"  # plus 22 Chinese dialects, per the model card

# Published shapes: see tests/budget/checkpoints.py.
CATALOGUE = (
    CatalogueModel("qwen3-asr-1.7b", "asr", "qwen3", "qwen3", "Qwen/Qwen3-ASR-1.7B", _LANGS, 82, False,
                   _w(4698434816, 2349217408), _SHAPE_17, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-1.7b-8bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-1.7B-8bit", _LANGS,
                   80, False, _w(2463182080, 317601408, 1720451072, 1720451072, 53764096), _SHAPE_17, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-1.7b-4bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-1.7B-4bit", _LANGS,
                   75, False, _w(1602956544, 317601408, 860225536, 1720451072, 53764096), _SHAPE_17, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-0.6b", "asr", "qwen3", "qwen3", "Qwen/Qwen3-ASR-0.6B", _LANGS, 72, False,
                   _w(1876017152, 938008576), _SHAPE_06, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-0.6b-8bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-0.6B-8bit", _LANGS,
                   70, False, _w(1006116864, 186441728, 595984384, 595984384, 18624512), _SHAPE_06, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-0.6b-4bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-0.6B-4bit", _LANGS,
                   65, False, _w(708124672, 186441728, 297992192, 595984384, 18624512), _SHAPE_06, "BF16", 5 * MB),
)

SPEC = FamilySpec(
    name="qwen3", title="Qwen3-ASR", engine="asr.qwen3.engine:Qwen3Engine", default_model=DEFAULT_MODEL,
    names=NAMES,
    capabilities=Capabilities(native_streaming=False, delay_control=False, word_timestamps=False,
                              rewrite_experimental=False, languages=tuple(LANGUAGE_NAMES), context_biasing=True),
    layouts=("original", "mlx"), working=working, shape=shape,
    claims_files=claims_files, claims_config=claims_config, catalogue=CATALOGUE,
    resolver="asr.qwen3.engine:resolve_qwen3",
)
