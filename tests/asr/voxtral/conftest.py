"""Tiny random Voxtral Realtime checkpoints in the real on-disk layouts, built once per session.

One seeded transformers `VoxtralRealtimeForConditionalGeneration` is the source of truth:
saved with `save_pretrained` (the transformers layout, also sharded), written back in the
ORIGINAL Mistral layout by inverting transformers' converter (params.json +
consolidated.safetensors, float32 and bf16), and in mlx-audio's layout (config.json +
model.safetensors: float, 4- and 8-bit, and an "old" 4-bit conversion that left the token
embeddings and the adapter float). All hold the same numbers, so any two can be compared.
torch and transformers are test-only and imported inside the fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.asr.voxtral.tekken_fixture import write_tiny_tekken

ENC = dict(dim=64, n_layers=2, head_dim=16, hidden_dim=128, n_heads=4, n_kv_heads=4,
           rope_theta=1_000_000.0, sliding_window=16, norm_eps=1e-5)  # fmt: skip
DEC = dict(dim=64, n_layers=2, head_dim=16, hidden_dim=128, n_heads=4, n_kv_heads=2,
           vocab_size=1024, norm_eps=1e-5, rope_theta=1_000_000.0, sliding_window=32)  # fmt: skip
N_MELS = 128  # the real value: the mel front end is shared with the real model
DOWNSAMPLE = 4
ORIGINAL_PREFIX = "mm_streams_embeddings.embedding_module."
ENCODER_PREFIX = ORIGINAL_PREFIX + "whisper_encoder."

# The published params.json, cut to the tiny sizes (field set as in the mistralai repo).
TINY_PARAMS = {
    **{k: DEC[k] for k in ("dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads")},
    "use_biases": False, "causal": True, "rope_theta": DEC["rope_theta"], "norm_eps": DEC["norm_eps"],
    "vocab_size": DEC["vocab_size"], "model_parallel": 1, "tied_embeddings": True,
    "sliding_window": DEC["sliding_window"], "model_max_length": 131072,
    "multimodal": {
        "whisper_model_args": {
            "encoder_args": {
                "audio_encoding_args": {
                    "sampling_rate": 16000, "frame_rate": 12.5, "num_mel_bins": N_MELS,
                    "hop_length": 160, "window_size": 400, "chunk_length_s": None,
                    "global_log_mel_max": 1.5, "transcription_format": "streaming",
                },
                **{k: ENC[k] for k in ("dim", "n_layers", "head_dim", "hidden_dim", "n_heads")},
                "vocab_size": DEC["vocab_size"], "n_kv_heads": ENC["n_kv_heads"], "use_biases": True,
                "use_cache": False, "rope_theta": ENC["rope_theta"], "causal": True,
                "norm_eps": ENC["norm_eps"], "pos_embed": "rope", "max_source_positions": None,
                "ffn_type": "swiglu", "norm_type": "rms_norm", "sliding_window": ENC["sliding_window"],
            },
            "downsample_args": {"downsample_factor": DOWNSAMPLE},
        }
    },
    "ada_rms_norm_t_cond": True,
    "ada_rms_norm_t_cond_dim": 32,
}  # fmt: skip


def tiny_hf_config():
    from transformers import VoxtralRealtimeConfig

    return VoxtralRealtimeConfig(
        audio_config=dict(
            hidden_size=ENC["dim"], intermediate_size=ENC["hidden_dim"], num_hidden_layers=ENC["n_layers"],
            num_attention_heads=ENC["n_heads"], head_dim=ENC["head_dim"], num_mel_bins=N_MELS,
            sliding_window=ENC["sliding_window"], rms_norm_eps=ENC["norm_eps"],
            rope_parameters={"rope_type": "default", "rope_theta": ENC["rope_theta"]},
        ),
        text_config=dict(
            hidden_size=DEC["dim"], intermediate_size=DEC["hidden_dim"], num_hidden_layers=DEC["n_layers"],
            num_attention_heads=DEC["n_heads"], num_key_value_heads=DEC["n_kv_heads"],
            head_dim=DEC["head_dim"], vocab_size=DEC["vocab_size"], sliding_window=DEC["sliding_window"],
            rms_norm_eps=DEC["norm_eps"],
            rope_parameters={"rope_type": "default", "rope_theta": DEC["rope_theta"]},
        ),
        downsample_factor=DOWNSAMPLE,
    )  # fmt: skip


# --- the HF converter, inverted key by key -------------------------------------------------

# transformers (in-memory names) -> original, the inverse of STATE_DICT_MAPPING in
# convert_voxtral_realtime_weights_to_hf.py.
_HF_TO_ORIGINAL_LAYER = {
    "self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
    "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
    "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
    "mlp.up_proj": "feed_forward.w3",
}  # fmt: skip


def unpermute_for_rope(t: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of the converter's permute_for_rope: view(h, rows/h/2, 2, ...).transpose(1, 2)
    became view(h, 2, rows/h/2, ...); transposing back restores interleaved pairs."""
    rows = t.shape[0]
    return t.reshape(n_heads, 2, rows // n_heads // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)


def permute_for_rope(t: np.ndarray, n_heads: int) -> np.ndarray:
    """The converter's permute_for_rope (weights and 1-D biases), verbatim in numpy."""
    rows = t.shape[0]
    return t.reshape(n_heads, rows // n_heads // 2, 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)


def hf_to_original(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The original consolidated.safetensors the HF converter would have turned into `state`."""
    pairs = {f"model.audio_tower.embedder.conv{i + 1}.{p}": f"{ENCODER_PREFIX}conv_layers.{i}.conv.{p}"
             for i in (0, 1) for p in ("weight", "bias")}
    pairs.update({
        "model.audio_tower.norm.weight": f"{ENCODER_PREFIX}transformer.norm.weight",
        "model.multi_modal_projector.linear_1.weight": f"{ORIGINAL_PREFIX}audio_language_projection.0.weight",
        "model.multi_modal_projector.linear_2.weight": f"{ORIGINAL_PREFIX}audio_language_projection.2.weight",
        "model.language_model.embed_tokens.weight": f"{ORIGINAL_PREFIX}tok_embeddings.weight",
        "model.language_model.norm.weight": "norm.weight",
    })
    out: dict[str, np.ndarray] = {ours: state[theirs] for theirs, ours in pairs.items()}
    sides = (
        ("model.audio_tower.layers", f"{ENCODER_PREFIX}transformer.layers", ENC,
         {"self_attn_layer_norm": "attention_norm", "final_layer_norm": "ffn_norm"}),
        ("model.language_model.layers", "layers", DEC,
         {"input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm",
          "ada_rms_norm.linear1": "ada_rms_norm_t_cond.0", "ada_rms_norm.linear2": "ada_rms_norm_t_cond.2"}),
    )  # fmt: skip
    for src, dst, args, extra in sides:
        for i in range(args["n_layers"]):
            for theirs, ours in {**_HF_TO_ORIGINAL_LAYER, **extra}.items():
                for p in ("weight", "bias"):
                    key = f"{src}.{i}.{theirs}.{p}"
                    if key not in state:
                        continue
                    value = state[key]
                    if theirs in ("self_attn.q_proj", "self_attn.k_proj"):
                        heads = args["n_heads"] if theirs == "self_attn.q_proj" else args["n_kv_heads"]
                        value = unpermute_for_rope(value, heads)
                    out[f"{dst}.{i}.{ours}.{p}"] = value
    return out


def original_to_ours(original: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our names: the original keys without the embedding-module prefix, convs in MLX layout."""
    out = {}
    for key, value in original.items():
        name = key.removeprefix(ORIGINAL_PREFIX)
        if ".conv_layers." in name and name.endswith(".weight"):
            value = value.transpose(0, 2, 1)  # torch (out, in, k) -> MLX (out, k, in)
        out[name] = value
    return out


# Ours -> mlx-audio's module names (its Model.sanitize, spelled out).
def ours_to_mlx_audio(name: str) -> str:
    import re

    rules = [
        (r"^tok_embeddings\.", "decoder.tok_embeddings."),
        (r"^norm\.", "decoder.norm."),
        (r"^layers\.(\d+)\.feed_forward\.w(\d)\.", r"decoder.layers.\1.feed_forward_w\2."),
        (r"^layers\.(\d+)\.ada_rms_norm_t_cond\.0\.", r"decoder.layers.\1.ada_rms_norm_t_cond.ada_down."),
        (r"^layers\.(\d+)\.ada_rms_norm_t_cond\.2\.", r"decoder.layers.\1.ada_rms_norm_t_cond.ada_up."),
        (r"^layers\.", "decoder.layers."),
        (r"^whisper_encoder\.conv_layers\.(\d)\.conv\.", r"encoder.conv_layers_\1_conv.conv."),
        (r"^whisper_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w(\d)\.",
         r"encoder.transformer_layers.\1.feed_forward_w\2."),
        (r"^whisper_encoder\.transformer\.layers\.", "encoder.transformer_layers."),
        (r"^whisper_encoder\.transformer\.norm\.", "encoder.transformer_norm."),
        (r"^audio_language_projection\.(\d)\.", r"encoder.audio_language_projection_\1."),
    ]  # fmt: skip
    for pattern, replacement in rules:
        new = re.sub(pattern, replacement, name)
        if new != name:
            return new
    raise KeyError(name)


def mlx_audio_config(quantization: dict | None = None) -> dict:
    """mlx-audio's convert.params_to_config applied to TINY_PARAMS."""
    p = json.loads(json.dumps(TINY_PARAMS))
    names = ("dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "vocab_size",
             "norm_eps", "rope_theta", "sliding_window", "tied_embeddings")
    decoder = {k: p[k] for k in names}
    decoder.update(ada_rms_norm_t_cond=True, ada_rms_norm_t_cond_dim=p["ada_rms_norm_t_cond_dim"])
    whisper = p["multimodal"]["whisper_model_args"]
    factor = whisper["downsample_args"]["downsample_factor"]
    encoder = {**whisper["encoder_args"], "downsample_factor": factor}
    config = {"model_type": "voxtral_realtime", "decoder": decoder, "encoder_args": encoder}
    if quantization:
        config["quantization"] = quantization
    return config


# mlx-audio's Model.model_quant_predicate: what its older conversions left in float.
MLX_AUDIO_SKIP = ("norm", "ada_rms_norm", "tok_embeddings", "conv_layers", "audio_language_projection")


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hf_voxtral_model():
    """A seeded random `VoxtralRealtimeForConditionalGeneration` (eval, float32).

    Every parameter is random so that a misplaced tensor shows: norms near 1, biases small,
    matrices scaled by 1/sqrt(fan-in) so activations stay O(1), embeddings N(0, 1) so the
    tied logits are peaked and greedy tokens vary with the audio."""
    import torch
    from transformers import VoxtralRealtimeForConditionalGeneration

    torch.manual_seed(0)
    model = VoxtralRealtimeForConditionalGeneration(tiny_hf_config()).eval()
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=gen)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * z)
            elif name.endswith("bias"):
                p.copy_(0.1 * z)
            elif "embed_tokens" in name:
                p.copy_(z)
            else:
                p.copy_(z / float(np.prod(p.shape[1:])) ** 0.5)
    assert model.lm_head.weight is model.model.language_model.embed_tokens.weight
    return model


@pytest.fixture(scope="session")
def hf_voxtral_state(hf_voxtral_model) -> dict[str, np.ndarray]:
    """The HF model's state dict (in-memory names) as float32 numpy arrays."""
    return {k: v.detach().cpu().numpy().copy() for k, v in hf_voxtral_model.state_dict().items()}


@pytest.fixture(scope="session")
def original_state(hf_voxtral_state) -> dict[str, np.ndarray]:
    return hf_to_original(hf_voxtral_state)


@pytest.fixture(scope="session")
def voxtral_expected(original_state) -> dict[str, np.ndarray]:
    """What every layout must load to, in our names (float32)."""
    return original_to_ours(original_state)


def _write_safetensors(path: Path, arrays: dict) -> None:
    import mlx.core as mx

    mx.save_safetensors(str(path), {k: mx.array(v) for k, v in arrays.items()})


def _write_original(folder: Path, original: dict[str, np.ndarray], bf16: bool) -> Path:
    import mlx.core as mx

    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(TINY_PARAMS, indent=2))
    arrays = {k: mx.array(v).astype(mx.bfloat16) if bf16 else mx.array(v) for k, v in original.items()}
    _write_safetensors(folder / "consolidated.safetensors", arrays)
    write_tiny_tekken(folder / "tekken.json", vocab_size=DEC["vocab_size"])
    return folder


def _quantized_ours(expected: dict[str, np.ndarray], bits: int, skip: tuple[str, ...]) -> dict:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from asr.voxtral.config import VoxtralConfig
    from asr.voxtral.model import VoxtralRealtime

    model = VoxtralRealtime(VoxtralConfig.from_params(TINY_PARAMS))
    model.load_weights([(k, mx.array(v)) for k, v in expected.items()], strict=True)

    def predicate(path, m):
        return (isinstance(m, (nn.Linear, nn.Embedding)) and m.weight.shape[-1] % 64 == 0
                and not any(s in path for s in skip))

    nn.quantize(model, group_size=64, bits=bits, class_predicate=predicate)
    return dict(tree_flatten(model.parameters()))


def _write_mlx(folder: Path, ours: dict, quantization: dict | None) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(mlx_audio_config(quantization), indent=2))
    _write_safetensors(folder / "model.safetensors", {ours_to_mlx_audio(k): v for k, v in ours.items()})
    write_tiny_tekken(folder / "tekken.json", vocab_size=DEC["vocab_size"])
    return folder


@pytest.fixture(scope="session")
def voxtral_dirs(hf_voxtral_model, original_state, voxtral_expected, tmp_path_factory) -> dict[str, Path]:
    """Checkpoint folders of the same weights: "transformers", "transformers_sharded",
    "original", "original_bf16", "mlx", "mlx_q4", "mlx_q8", "mlx_q4_old" (embeddings and
    adapter left float, as older mlx-audio conversions did). Each holds a tiny tekken.json."""
    root = tmp_path_factory.mktemp("voxtral")
    dirs = {}
    for name, shard in (("transformers", None), ("transformers_sharded", "100KB")):
        folder = root / name
        if shard:
            hf_voxtral_model.save_pretrained(folder, max_shard_size=shard)
        else:
            hf_voxtral_model.save_pretrained(folder)
        write_tiny_tekken(folder / "tekken.json", vocab_size=DEC["vocab_size"])
        dirs[name] = folder
    dirs["original"] = _write_original(root / "original", original_state, bf16=False)
    dirs["original_bf16"] = _write_original(root / "original_bf16", original_state, bf16=True)
    dirs["mlx"] = _write_mlx(root / "mlx", voxtral_expected, None)
    for name, bits, skip in (("mlx_q4", 4, ("norm", "ada_rms_norm_t_cond.2")), ("mlx_q8", 8, ()),
                             ("mlx_q4_old", 4, MLX_AUDIO_SKIP)):  # fmt: skip
        ours = _quantized_ours(voxtral_expected, bits, skip)
        dirs[name] = _write_mlx(root / name, ours, {"group_size": 64, "bits": bits})
    return dirs
