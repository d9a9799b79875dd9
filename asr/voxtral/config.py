"""Voxtral Realtime's configuration, read from any of the three layouts users have.

- original (mistralai/Voxtral-Mini-4B-Realtime-2602 `params.json`): decoder fields at the top
  level, the encoder under `multimodal.whisper_model_args.encoder_args` (with its
  `audio_encoding_args`) and `multimodal.whisper_model_args.downsample_args`. Field names as
  in the published file (quoted in antirez/voxtral.c MODEL.md and several ports' tests):
  dim, n_layers, head_dim, hidden_dim, n_heads, n_kv_heads, use_biases, rope_theta, norm_eps,
  vocab_size, tied_embeddings, sliding_window, ada_rms_norm_t_cond(_dim).
- transformers (`config.json`, model_type voxtral_realtime): `text_config` / `audio_config`
  as in transformers' configuration_voxtral_realtime.py; convert_voxtral_realtime_weights_to_hf.py
  maps dim→hidden_size, n_layers→num_hidden_layers, hidden_dim→intermediate_size,
  n_heads→num_attention_heads, n_kv_heads→num_key_value_heads, norm_eps→rms_norm_eps.
  The audio front end lives in `preprocessor_config.json` when present.
- mlx-audio / mlx-community (`config.json`, model_type voxtral_realtime): `decoder` with the
  params.json names, `encoder_args` with the encoder's names plus `downsample_factor` and a
  nested `audio_encoding_args`, optional `quantization` and `transcription_delay_ms`
  (Blaizzy/mlx-audio stt/models/voxtral_realtime/config.py and convert.py).

Where a layout leaves a field out, the default is what that layout's own loader would use,
so a file loads here to the numbers its reference implementation would run with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from asr.base import ASRError


@dataclass(frozen=True)
class EncoderArgs:
    """The causal Whisper-style audio encoder (conv stem + transformer)."""

    dim: int
    n_layers: int
    head_dim: int
    hidden_dim: int
    n_heads: int
    n_kv_heads: int
    rope_theta: float
    sliding_window: int
    norm_eps: float
    num_mel_bins: int
    use_biases: bool = True  # q, v, o and the FFN down projection; k never has one


@dataclass(frozen=True)
class DecoderArgs:
    """The Mistral-style text decoder with delay-conditioned AdaRMSNorm."""

    dim: int
    n_layers: int
    head_dim: int
    hidden_dim: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    norm_eps: float
    rope_theta: float
    sliding_window: int
    ada_rms_norm_t_cond_dim: int
    tied_embeddings: bool = True
    use_biases: bool = False


@dataclass(frozen=True)
class AudioEncodingArgs:
    """The log-mel front end (params.json `audio_encoding_args`); defaults are the published ones."""

    sampling_rate: int = 16_000
    frame_rate: float = 12.5
    num_mel_bins: int = 128
    hop_length: int = 160
    window_size: int = 400
    global_log_mel_max: float = 1.5


@dataclass(frozen=True)
class VoxtralConfig:
    encoder: EncoderArgs
    decoder: DecoderArgs
    audio: AudioEncodingArgs
    downsample_factor: int
    # Only mlx-audio configs carry it; the original keeps it in tekken.json's `audio`.
    transcription_delay_ms: int | None = None

    @property
    def samples_per_token(self) -> int:
        """Audio samples per decoder step (1280 = 80 ms at 16 kHz)."""
        return int(self.audio.sampling_rate // self.audio.frame_rate)

    @property
    def mel_frames_per_token(self) -> int:
        """Mel frames per decoder step (8): conv stride 2 times the adapter's downsample factor."""
        return self.samples_per_token // self.audio.hop_length

    def delay_tokens(self, delay_ms: float) -> int:
        """Decoder steps in a transcription delay, as mistral-common counts them (480 ms → 6)."""
        samples = int(delay_ms / 1000.0 * self.audio.sampling_rate)
        hop = self.audio.hop_length
        frames = math.ceil(samples / hop - 1) if samples % hop else samples // hop
        return math.ceil(frames / self.mel_frames_per_token)

    @classmethod
    def from_params(cls, params: dict[str, Any], source: str = "params.json") -> VoxtralConfig:
        """The original Mistral `params.json`."""
        read = _Reader(params, source)
        whisper = read.section("multimodal", "whisper_model_args")
        enc = _Reader(read.nested(whisper, "encoder_args"), f"{source} encoder_args")
        audio = enc.get("audio_encoding_args", {})
        downsample = read.nested(whisper, "downsample_args")
        return cls(
            encoder=_encoder_from_native(enc, audio),
            decoder=_decoder_from_native(read),
            audio=_audio_args(audio),
            downsample_factor=int(_Reader(downsample, f"{source} downsample_args").req("downsample_factor")),
        )

    @classmethod
    def from_mlx_audio(cls, config: dict[str, Any], source: str = "config.json") -> VoxtralConfig:
        """An mlx-audio / mlx-community `config.json` (decoder / encoder_args sections).

        Missing fields take mlx-audio's own dataclass defaults, which are the published model's."""
        read = _Reader(config, source)
        enc_raw = dict(read.section("encoder_args"))
        audio = enc_raw.pop("audio_encoding_args", None) or config.get("audio_encoding_args") or {}
        enc = _Reader({**_MLX_ENCODER_DEFAULTS, **enc_raw}, f"{source} encoder_args")
        dec = _Reader({**_MLX_DECODER_DEFAULTS, **read.section("decoder")}, f"{source} decoder")
        delay = config.get("transcription_delay_ms")
        return cls(
            encoder=_encoder_from_native(enc, audio),
            decoder=_decoder_from_native(dec),
            audio=_audio_args(audio),
            downsample_factor=int(enc.req("downsample_factor")),
            transcription_delay_ms=None if delay is None else int(delay),
        )

    @classmethod
    def from_transformers(
        cls, config: dict[str, Any], preprocessor: dict[str, Any] | None = None,
        source: str = "config.json",
    ) -> VoxtralConfig:
        """A transformers `config.json` (+ `preprocessor_config.json` when there is one)."""
        read = _Reader(config, source)
        # VoxtralRealtimeConfig merges a text_config dict over these defaults (its "BC" path).
        text = _Reader({**_HF_TEXT_DEFAULTS, **read.section("text_config")}, f"{source} text_config")
        audio_cfg = _Reader({**_HF_AUDIO_DEFAULTS, **read.section("audio_config")}, f"{source} audio_config")
        pre = preprocessor or {}
        n_mels = int(pre.get("feature_size", audio_cfg.req("num_mel_bins")))
        hop = int(pre.get("hop_length", 160))
        per_tok = int(config.get("audio_length_per_tok", 8))
        sampling_rate = int(pre.get("sampling_rate", 16_000))
        audio = AudioEncodingArgs(
            sampling_rate=sampling_rate,
            frame_rate=sampling_rate / (hop * per_tok),
            num_mel_bins=n_mels,
            hop_length=hop,
            window_size=int(pre.get("win_length", 400)),
            global_log_mel_max=float(pre.get("global_log_mel_max", 1.5)),
        )
        heads = int(audio_cfg.req("num_attention_heads"))
        encoder = EncoderArgs(
            dim=int(audio_cfg.req("hidden_size")),
            n_layers=int(audio_cfg.req("num_hidden_layers")),
            head_dim=int(audio_cfg.get("head_dim") or 64),  # the encoder config's default
            hidden_dim=int(audio_cfg.req("intermediate_size")),
            n_heads=heads,
            # VoxtralRealtimeEncoderConfig maps num_key_value_heads onto num_attention_heads.
            n_kv_heads=heads,
            rope_theta=_hf_rope_theta(audio_cfg),
            sliding_window=_window(audio_cfg.req("sliding_window"), audio_cfg.source),
            norm_eps=float(audio_cfg.req("rms_norm_eps")),
            num_mel_bins=n_mels,
        )
        dim = int(text.req("hidden_size"))
        n_heads = int(text.req("num_attention_heads"))
        tied = config.get("tie_word_embeddings", text.get("tie_word_embeddings", True))
        decoder = DecoderArgs(
            dim=dim,
            n_layers=int(text.req("num_hidden_layers")),
            head_dim=int(text.get("head_dim") or dim // n_heads),
            hidden_dim=int(text.req("intermediate_size")),
            n_heads=n_heads,
            n_kv_heads=int(text.get("num_key_value_heads") or n_heads),
            vocab_size=int(text.req("vocab_size")),
            norm_eps=float(text.req("rms_norm_eps")),
            rope_theta=_hf_rope_theta(text),
            sliding_window=_window(text.req("sliding_window"), text.source),
            # modeling_voxtral_realtime.py hard-codes the AdaRMSNorm bottleneck: Linear(hidden, 32).
            ada_rms_norm_t_cond_dim=32,
            tied_embeddings=bool(tied),
        )
        return cls(encoder, decoder, audio, int(config.get("downsample_factor", 4)))


# mlx-audio's EncoderConfig / DecoderConfig defaults (stt/models/voxtral_realtime/config.py).
_MLX_ENCODER_DEFAULTS = dict(
    dim=1280, n_layers=32, n_heads=32, head_dim=64, hidden_dim=5120, norm_eps=1e-5,
    rope_theta=1_000_000.0, sliding_window=750, use_biases=True, downsample_factor=4,
)  # fmt: skip
_MLX_DECODER_DEFAULTS = dict(
    dim=3072, n_layers=26, n_heads=32, n_kv_heads=8, head_dim=128, hidden_dim=9216,
    vocab_size=131072, norm_eps=1e-5, rope_theta=1_000_000.0, sliding_window=8192,
    tied_embeddings=True, ada_rms_norm_t_cond_dim=32,
)  # fmt: skip
# transformers' defaults: VoxtralRealtimeConfig.sub_configs_defaults["text_config"] and the
# VoxtralRealtimeEncoderConfig class fields.
_HF_TEXT_DEFAULTS = dict(
    vocab_size=131072, hidden_size=3072, intermediate_size=9216, num_hidden_layers=26,
    num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5, rope_theta=1_000_000.0,
    head_dim=128, sliding_window=8192,
)  # fmt: skip
_HF_AUDIO_DEFAULTS = dict(
    hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=32,
    num_mel_bins=128, rms_norm_eps=1e-5, sliding_window=750, head_dim=64, rope_theta=10000.0,
)  # fmt: skip


class _Reader:
    """Required and optional fields of one JSON object, with one-line errors naming the file."""

    def __init__(self, data: Any, source: str):
        if not isinstance(data, dict):
            raise ASRError(f"{source} is not a JSON object")
        self.data, self.source = data, source

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def req(self, key: str) -> Any:
        value = self.data.get(key)
        if value is None:
            raise ASRError(f"{self.source} lacks {key}")
        return value

    def section(self, *keys: str) -> dict[str, Any]:
        return self.nested(self.data, *keys)

    def nested(self, data: dict, *keys: str) -> dict[str, Any]:
        for key in keys:
            data = data.get(key) if isinstance(data, dict) else None
            if not isinstance(data, dict):
                raise ASRError(f"{self.source} lacks {'.'.join(keys)}")
        return data


def _encoder_from_native(enc: _Reader, audio: dict[str, Any]) -> EncoderArgs:
    n_heads = int(enc.req("n_heads"))
    return EncoderArgs(
        dim=int(enc.req("dim")),
        n_layers=int(enc.req("n_layers")),
        head_dim=int(enc.req("head_dim")),
        hidden_dim=int(enc.req("hidden_dim")),
        n_heads=n_heads,
        n_kv_heads=int(enc.get("n_kv_heads") or n_heads),
        rope_theta=float(enc.req("rope_theta")),
        sliding_window=_window(enc.req("sliding_window"), enc.source),
        norm_eps=float(enc.req("norm_eps")),
        num_mel_bins=int(audio.get("num_mel_bins", 128)),
        use_biases=bool(enc.get("use_biases", True)),
    )


def _decoder_from_native(dec: _Reader) -> DecoderArgs:
    if dec.get("ada_rms_norm_t_cond") is False:
        raise ASRError(f"{dec.source}: ada_rms_norm_t_cond is false; this is not a Voxtral Realtime model")
    return DecoderArgs(
        dim=int(dec.req("dim")),
        n_layers=int(dec.req("n_layers")),
        head_dim=int(dec.req("head_dim")),
        hidden_dim=int(dec.req("hidden_dim")),
        n_heads=int(dec.req("n_heads")),
        n_kv_heads=int(dec.req("n_kv_heads")),
        vocab_size=int(dec.req("vocab_size")),
        norm_eps=float(dec.req("norm_eps")),
        rope_theta=float(dec.req("rope_theta")),
        sliding_window=_window(dec.req("sliding_window"), dec.source),
        ada_rms_norm_t_cond_dim=int(dec.req("ada_rms_norm_t_cond_dim")),
        tied_embeddings=bool(dec.get("tied_embeddings", True)),
        use_biases=bool(dec.get("use_biases", False)),
    )


def _audio_args(audio: dict[str, Any]) -> AudioEncodingArgs:
    defaults = AudioEncodingArgs()
    return AudioEncodingArgs(
        sampling_rate=int(audio.get("sampling_rate", defaults.sampling_rate)),
        frame_rate=float(audio.get("frame_rate", defaults.frame_rate)),
        num_mel_bins=int(audio.get("num_mel_bins", defaults.num_mel_bins)),
        hop_length=int(audio.get("hop_length", defaults.hop_length)),
        window_size=int(audio.get("window_size", defaults.window_size)),
        global_log_mel_max=float(audio.get("global_log_mel_max", defaults.global_log_mel_max)),
    )


def _hf_rope_theta(section: _Reader) -> float:
    # transformers 5 writes rope_parameters {"rope_theta", "rope_type"}; older files rope_theta.
    rope = section.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default":
        raise ASRError(f"{section.source}: rope_type {rope['rope_type']!r} is not supported")
    if "rope_theta" in rope:
        return float(rope["rope_theta"])
    return float(section.req("rope_theta"))


def _window(value: Any, source: str) -> int:
    # The HF converter notes sliding_window "may sometimes be a string in params.json".
    try:
        window = int(value)
    except (TypeError, ValueError):
        raise ASRError(f"{source}: sliding_window {value!r} is not a number") from None
    if window <= 0:
        raise ASRError(f"{source}: sliding_window must be positive (got {window})")
    return window
