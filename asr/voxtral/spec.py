"""What the rest of notetaker knows about Voxtral Realtime: names, layouts, memory formula,
catalogue. Cheap to import (no MLX); the engine and loaders import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from asr.base import ASRError, Capabilities
from asr.runtime.family import CatalogueModel, FamilySpec
from asr.runtime.family import weights_summary as _w

ORIGINAL_REPO = "mistralai/Voxtral-Mini-4B-Realtime-2602"
NAMES = {
    "voxtral-mini-4b-realtime": ORIGINAL_REPO,
    "voxtral-mini-4b-realtime-4bit": "mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit",
    "voxtral-mini-4b-realtime-fp16": "mlx-community/Voxtral-Mini-4B-Realtime-2602-fp16",
}
DEFAULT_MODEL = "voxtral-mini-4b-realtime-4bit"
# Languages Mistral lists for Voxtral Mini Realtime.
LANGUAGES = ("en", "zh", "hi", "es", "ar", "fr", "pt", "ru", "de", "ja", "ko", "it", "nl")
DEFAULT_DELAY_MS = 480
MIN_DELAY_MS, MAX_DELAY_MS = 80, 2400


def delay_tokens(delay_ms: int | None) -> int:
    """The delay as decoder steps of 80 ms (one-line ASRError for one the model cannot take)."""
    delay_ms = DEFAULT_DELAY_MS if delay_ms is None else int(delay_ms)
    if not MIN_DELAY_MS <= delay_ms <= MAX_DELAY_MS or delay_ms % 80:
        raise ASRError(f"delay must be a multiple of 80 ms between {MIN_DELAY_MS} and {MAX_DELAY_MS}, not {delay_ms}")
    return delay_ms // 80


def check_options(model: str, language: str | None, delay_ms: int | None) -> None:
    delay_tokens(delay_ms)


def working(v: Mapping[str, int], item: int) -> tuple[int, int]:
    """(KV bytes, activation bytes) of Voxtral Realtime: both KV caches at their bounds — the
    decoder's reserves its sliding window; the encoder's holds up to 2 x window - 1 frames
    just after a catch-up appends a whole window of frames at once — one step's logits and
    the encoder's window of activations through its FFN."""
    kv_dec = 2 * v["dec_layers"] * v["dec_window"] * v["dec_kv_heads"] * v["dec_head_dim"] * item
    kv_enc = 2 * v["enc_layers"] * (2 * v["enc_window"] - 1) * v["enc_kv_heads"] * v["enc_head_dim"] * item
    acts = v["vocab"] * 4 * 2 + v["enc_window"] * (v["enc_dim"] * 4 + v["enc_hidden"] * 3) * item
    return kv_dec + kv_enc, acts


def shape(folder: Path) -> dict[str, int]:
    from asr.voxtral.weights import read_config

    return shape_of(read_config(folder))


def shape_of(cfg) -> dict[str, int]:
    """The numbers of a VoxtralConfig that `working` reads."""
    d, e = cfg.decoder, cfg.encoder
    return {"dec_layers": d.n_layers, "dec_kv_heads": d.n_kv_heads, "dec_head_dim": d.head_dim,
            "dec_window": d.sliding_window, "enc_layers": e.n_layers, "enc_kv_heads": e.n_kv_heads,
            "enc_head_dim": e.head_dim, "enc_window": e.sliding_window, "enc_dim": e.dim,
            "enc_hidden": e.hidden_dim, "vocab": d.vocab_size}  # fmt: skip


def claims_files(folder: Path) -> bool:
    return (folder / "params.json").is_file() and (folder / "consolidated.safetensors").is_file()  # Mistral's


def claims_config(folder: Path, config: dict[str, Any]) -> bool:
    model_type = config.get("model_type")
    if model_type == "voxtral_realtime":
        return True
    if model_type is None and ("decoder" in config or "encoder_args" in config):
        from asr.voxtral.weights import detect_layout

        detect_layout(folder)  # a one-line error for a folder that only looks like Voxtral
        return True
    return False


MB = 10**6
_SHAPE = {"dec_layers": 26, "dec_kv_heads": 8, "dec_head_dim": 128, "dec_window": 8192, "enc_layers": 32,
          "enc_kv_heads": 32, "enc_head_dim": 64, "enc_window": 750, "enc_dim": 1280, "enc_hidden": 5120,
          "vocab": 131072}  # fmt: skip
_LANGS = f"{len(LANGUAGES)} languages"

# Natively streaming. Published shapes: see tests/budget/checkpoints.py.
CATALOGUE = (
    CatalogueModel("voxtral-mini-4b-realtime-fp16", "asr", "voxtral", "voxtral",
                   "mlx-community/Voxtral-Mini-4B-Realtime-2602-fp16", _LANGS, 100,
                   False, _w(8870505472, 4429679360), _SHAPE, "F16", 15 * MB),
    CatalogueModel("voxtral-mini-4b-realtime", "asr", "voxtral", "voxtral", ORIGINAL_REPO,
                   _LANGS, 95, False, _w(8859358720, 4429679360), _SHAPE, "BF16",
                   15 * MB, ("params.json", "tekken.json", "consolidated.safetensors", "*.md"),
                   note="Mistral's original bf16 files"),
    CatalogueModel("voxtral-mini-4b-realtime-4bit", "asr", "voxtral", "voxtral",
                   "mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit", _LANGS, 90,
                   False, _w(3133615104, 438799104, 1995440128, 3990880256, 124715008), _SHAPE, "F16", 15 * MB,
                   note="the default on 16 GB Apple silicon"),
)

SPEC = FamilySpec(
    name="voxtral", title="Voxtral Realtime", engine="asr.voxtral.engine:VoxtralEngine", default_model=DEFAULT_MODEL,
    names=NAMES,
    capabilities=Capabilities(native_streaming=True, delay_control=True, word_timestamps=False,
                              rewrite_experimental=True, languages=LANGUAGES),
    layouts=("original", "transformers", "mlx"), working=working, shape=shape,
    claims_files=claims_files, claims_config=claims_config, catalogue=CATALOGUE,
    resolver="asr.voxtral.engine:resolve_voxtral", check_options=check_options,
)
