"""Qwen3-ASR sizes, read from a checkpoint's config.json.

The original repos (Qwen/Qwen3-ASR-0.6B, -1.7B) nest everything under `thinker_config`
({audio_config, text_config, audio_token_id, ...}); mlx-audio's conversions
(mlx-community/Qwen3-ASR-*) keep that file or flatten it to `audio_config` / `text_config`
at the top level. Both are read; a missing field takes the 0.6B value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from asr.base import ASRError

# Full language names the model writes after "language " (and is forced with), by ISO code.
LANGUAGE_NAMES = {
    "ar": "Arabic", "yue": "Cantonese", "zh": "Chinese", "cs": "Czech", "da": "Danish",
    "nl": "Dutch", "en": "English", "fil": "Filipino", "fi": "Finnish", "fr": "French",
    "de": "German", "el": "Greek", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "mk": "Macedonian", "ms": "Malay",
    "fa": "Persian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "es": "Spanish", "sv": "Swedish", "th": "Thai", "tr": "Turkish", "vi": "Vietnamese",
}  # fmt: skip


@dataclass(frozen=True)
class AudioConfig:
    num_mel_bins: int = 128
    d_model: int = 896
    encoder_layers: int = 18
    encoder_attention_heads: int = 14
    encoder_ffn_dim: int = 3584
    downsample_hidden_size: int = 480
    output_dim: int = 1024
    n_window: int = 50  # half a conv chunk, in mel frames
    n_window_infer: int = 800  # mel frames one attention window spans
    max_source_positions: int = 1500

    @property
    def chunk_frames(self) -> int:
        return 2 * self.n_window

    @property
    def tokens_per_chunk(self) -> int:
        return conv_out_len(self.chunk_frames)

    @property
    def window_tokens(self) -> int:
        """Encoder tokens in one bidirectional attention window (104: 8 s)."""
        return self.tokens_per_chunk * (self.n_window_infer // self.chunk_frames)

    @property
    def freq_after_conv(self) -> int:
        return conv_out_len(self.num_mel_bins)


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 151936
    hidden_size: int = 1024
    intermediate_size: int = 3072
    num_hidden_layers: int = 28
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 128
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    max_position_embeddings: int = 65536


@dataclass(frozen=True)
class Qwen3ASRConfig:
    audio: AudioConfig
    text: TextConfig
    audio_token_id: int = 151676
    audio_start_token_id: int = 151669
    audio_end_token_id: int = 151670

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config.json") -> Qwen3ASRConfig:
        root = data.get("thinker_config", data)
        if not isinstance(root, dict):
            raise ASRError(f"{where}: thinker_config is not an object")
        audio = _section(AudioConfig, root.get("audio_config", {}), where, "audio_config")
        text_data = dict(root.get("text_config", {}))
        # transformers 5 nests rope_theta under rope_parameters. mrope_section is not needed:
        # with audio and text only, the three position streams are equal, i.e. plain RoPE.
        rope = text_data.get("rope_parameters") or {}
        if "rope_theta" not in text_data and "rope_theta" in rope:
            text_data["rope_theta"] = rope["rope_theta"]
        if "tie_word_embeddings" not in text_data and "tie_word_embeddings" in data:
            text_data["tie_word_embeddings"] = data["tie_word_embeddings"]
        text = _section(TextConfig, text_data, where, "text_config")
        ids = {k: root[k] for k in ("audio_token_id", "audio_start_token_id", "audio_end_token_id") if k in root}
        try:
            ids = {k: int(v) for k, v in ids.items()}
        except (TypeError, ValueError):
            raise ASRError(f"{where}: token ids must be integers") from None
        cfg = cls(audio, text, **ids)
        cfg.validate(where)
        return cfg

    def validate(self, where: str) -> None:
        a, t = self.audio, self.text
        if a.d_model % a.encoder_attention_heads or a.d_model % 2:
            raise ASRError(f"{where}: audio d_model {a.d_model} does not split into "
                           f"{a.encoder_attention_heads} heads")
        if a.n_window_infer % a.chunk_frames:
            raise ASRError(f"{where}: n_window_infer must be a multiple of 2 * n_window")
        if t.num_attention_heads % t.num_key_value_heads:
            raise ASRError(f"{where}: {t.num_attention_heads} query heads do not share "
                           f"{t.num_key_value_heads} key/value heads")
        if a.output_dim != t.hidden_size:
            raise ASRError(f"{where}: audio output_dim {a.output_dim} != text hidden_size {t.hidden_size}")
        for name in ("audio_token_id", "audio_start_token_id", "audio_end_token_id"):
            if not 0 <= getattr(self, name) < t.vocab_size:
                raise ASRError(f"{where}: {name} is outside the vocabulary")


def conv_out_len(n: int, convs: int = 3) -> int:
    """Length after `convs` stride-2 convolutions (kernel 3, padding 1); zero stays zero."""
    for _ in range(convs):
        n = (n - 1) // 2 + 1 if n > 0 else 0
    return n


def _section(cls, data: Any, where: str, name: str):
    if not isinstance(data, dict):
        raise ASRError(f"{where}: {name} is not an object")
    known = {f.name: f.type for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            continue
        try:
            kwargs[key] = bool(value) if known[key] == "bool" else (
                float(value) if known[key] == "float" else int(value))
        except (TypeError, ValueError):
            raise ASRError(f"{where}: {name}.{key} is not a number") from None
    return cls(**kwargs)
