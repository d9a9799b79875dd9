"""The header-only checkpoint fixtures (tests/budget/checkpoints.py) are the real repos.

Three kinds of evidence:
- published figures: tensor counts, dtype counts, file and index sizes pinned by others from the
  real files, parameter counts from the model cards (each quoted with where it is from);
- the generators, run on this repo's tiny test configs, write what the repo's own test builders
  write (tests/asr/*/conftest.py, tests/rewrite/tiny_llm.py), and at full size what transformers
  builds (meta device: no memory);
- our loaders accept them: tiny ones filled with random data load for real; full-size ones are
  made sparse (the data region is a hole, no disk used) and go through the public loaders with
  evaluation switched off, so nothing is read or allocated.
"""

from __future__ import annotations

import itertools
import json
import struct
import time
from pathlib import Path

import mlx.core as mx
import pytest

from tests.asr.qwen3 import conftest as qwen3_builders
from tests.asr.voxtral import conftest as voxtral_builders
from tests.asr.whisper import conftest as whisper_builders
from tests.budget.checkpoints import (
    DTYPE_BYTES,
    INDEX_FILE,
    SPECS,
    VOXTRAL_ORIGINAL_PREFIX,
    VOXTRAL_PARAMS,
    CheckpointSpec,
    dtype_counts,
    header_json,
    index_for,
    llama_mlx_spec,
    llama_mlx_tensors,
    numel,
    parameter_count,
    quantized_modules,
    qwen3_asr_config,
    qwen3_asr_mlx_spec,
    qwen3_asr_mlx_tensors,
    qwen3_asr_original_spec,
    qwen3_asr_original_tensors,
    read_header,
    safetensors_file_bytes,
    stored_bytes,
    tensor_bytes,
    tensor_count,
    voxtral_mlx_config,
    voxtral_mlx_spec,
    voxtral_mlx_tensors,
    voxtral_original_spec,
    voxtral_original_tensors,
    whisper_spec,
    whisper_transformers_tensors,
    with_quantization,
    write_checkpoint,
)

# The repo's own tiny-checkpoint builders: their session fixtures, made visible to the tests here.
hf_voxtral_model = voxtral_builders.hf_voxtral_model
hf_voxtral_state = voxtral_builders.hf_voxtral_state
original_state = voxtral_builders.original_state
voxtral_expected = voxtral_builders.voxtral_expected
voxtral_dirs = voxtral_builders.voxtral_dirs
hf_qwen3_model = qwen3_builders.hf_qwen3_model
hf_qwen3_state = qwen3_builders.hf_qwen3_state
qwen3_original = qwen3_builders.qwen3_original
qwen3_mlx_8bit = qwen3_builders.qwen3_mlx_8bit
qwen3_mlx_4bit = qwen3_builders.qwen3_mlx_4bit
hf_tiny_model = whisper_builders.hf_tiny_model
hf_tiny_dir = whisper_builders.hf_tiny_dir
VOXTRAL_TINY_PARAMS = voxtral_builders.TINY_PARAMS
TINY_HF_CONFIG = whisper_builders.TINY_HF_CONFIG
qwen3_tiny_config = qwen3_builders.original_config
voxtral_tiny_mlx_config = voxtral_builders.mlx_audio_config

MX_DTYPES = {"BF16": mx.bfloat16, "F16": mx.float16, "F32": mx.float32, "U32": mx.uint32}
DTYPE_NAMES = {mx.bfloat16: "BF16", mx.float16: "F16", mx.float32: "F32", mx.uint32: "U32"}


def names_and_shapes(tensors: dict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v[1]) for k, v in tensors.items()}


def file_tensors(path: Path) -> dict:
    return read_header(path)[0]


def folder_tensors(folder: Path) -> dict:
    out: dict = {}
    for path in sorted(folder.glob("*.safetensors")):
        out.update(file_tensors(path))
    return out


def materialize(spec: CheckpointSpec, folder: Path, seed: int = 0) -> Path:
    """The spec as a real checkpoint: its json files and random tensors of its dtypes and shapes."""
    write_checkpoint(spec, folder)
    mx.random.seed(seed)
    for name, tensors in spec.shards.items():
        arrays = {}
        for key, (dtype, shape) in tensors.items():
            if dtype == "U32":
                arrays[key] = mx.random.randint(0, 2**31 - 1, shape).astype(mx.uint32)
            elif key.endswith(".scales"):
                arrays[key] = (0.01 + 0.01 * mx.random.uniform(shape=shape)).astype(MX_DTYPES[dtype])
            else:
                arrays[key] = (0.05 * mx.random.normal(shape)).astype(MX_DTYPES[dtype])
        mx.save_safetensors(str(folder / name), arrays, metadata=spec.metadata or {})
    return folder


def sparse(spec: CheckpointSpec, folder: Path) -> Path:
    """The header-only files, extended to their real length with a hole: readers that check
    offsets against the file size (MLX does) open them, nothing is stored."""
    write_checkpoint(spec, folder)
    for name, tensors in spec.shards.items():
        path = folder / name
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size + sum(tensor_bytes(t) for t in tensors.values()))
    return folder


@pytest.fixture
def no_eval(monkeypatch):
    """Switch MLX evaluation off: loaders then build lazy arrays that are never read."""
    monkeypatch.setattr(mx, "eval", lambda *args, **kwargs: None)


def _sparse_supported(tmp_path: Path) -> bool:
    probe = tmp_path / "sparse-probe"
    with open(probe, "wb") as f:
        f.truncate(1 << 30)
    sparse_ok = probe.stat().st_blocks * 512 < (1 << 20)
    probe.unlink()
    return sparse_ok


# --- the written files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_written_files_parse_back(name, tmp_path):
    spec = SPECS[name]
    start = time.perf_counter()
    folder = write_checkpoint(spec, tmp_path / "repo")
    assert time.perf_counter() - start < 1.0
    assert folder == tmp_path / "repo"

    for file, content in spec.files.items():
        assert json.loads((folder / file).read_text()) == content
    for file, tensors in spec.shards.items():
        raw = (folder / file).read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        assert len(raw) == 8 + length  # the header only, no data bytes
        header = json.loads(raw[8:])
        assert header.pop("__metadata__", None) == spec.metadata
        assert {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items()} == tensors
        spans = sorted(tuple(v["data_offsets"]) for v in header.values())
        assert spans[0][0] == 0
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # contiguous
        for key, entry in header.items():
            begin, end = entry["data_offsets"]
            assert end - begin == numel(entry["shape"]) * DTYPE_BYTES[entry["dtype"]], key
        if spec.header_style == "pt":
            assert length % 8 == 0  # the safetensors library pads with spaces
        assert safetensors_file_bytes(spec, file) == 8 + length + spans[-1][1]

    index_path = folder / INDEX_FILE
    if len(spec.shards) > 1:
        assert index_path.is_file()
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        assert index["metadata"]["total_size"] == stored_bytes(spec)
        assert sorted(index["weight_map"]) == sorted(spec.tensors)
        for key, file in index["weight_map"].items():
            assert key in spec.shards[file]
        assert list(index["weight_map"]) == sorted(index["weight_map"])


def test_write_checkpoint_adds_an_index_to_sharded_specs_without_one(tmp_path):
    spec = qwen3_asr_original_spec("tiny", qwen3_tiny_config(), "F32", max_shard_bytes=200_000)
    assert len(spec.shards) > 1
    bare = CheckpointSpec(name="t", repo="t", files={"config.json": spec.config}, shards=spec.shards, sources=())
    folder = write_checkpoint(bare, tmp_path)
    index = json.loads((folder / INDEX_FILE).read_text())
    assert index == json.loads(json.dumps(index_for(spec.shards)))


def test_header_writers_match_the_libraries(tmp_path):
    """Headers laid out as the safetensors library and MLX write them (same bytes for one order)."""
    import numpy as np
    from safetensors.numpy import save

    tensors = {"b.weight": ("F16", (3, 5)), "a.bias": ("F32", (7,)), "c": ("U32", (2, 2))}
    np_dtypes = {"F16": np.float16, "F32": np.float32, "U32": np.uint32}
    blob = save({k: np.zeros(s, np_dtypes[d]) for k, (d, s) in tensors.items()}, metadata={"format": "pt"})
    (length,) = struct.unpack("<Q", blob[:8])
    assert header_json(tensors, {"format": "pt"}, "pt") == blob[8 : 8 + length]

    one = {"w": ("F16", (3, 5))}  # a single tensor: MLX's data order is then known too
    mx.save_safetensors(str(tmp_path / "m.safetensors"), {"w": mx.zeros((3, 5), mx.float16)},
                        metadata={"format": "mlx"})  # fmt: skip
    raw = (tmp_path / "m.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert header_json(one, {"format": "mlx"}, "mlx") == raw[8 : 8 + length]


# --- published figures -----------------------------------------------------------------------


def close_to_real_file(spec: CheckpointSpec, file: str, real_bytes: int) -> None:
    """The real file's size = 8 + header + data. Our data bytes are exact; the header differs
    only in the digits of the data offsets, which follow MLX's hash-map order (random orders of
    these tensors spread the header by about ±0.2 %)."""
    ours = safetensors_file_bytes(spec, file)
    header = len(header_json(spec.shards[file], spec.metadata, spec.header_style))
    assert abs(ours - real_bytes) <= 0.004 * header, (ours, real_bytes)


def test_voxtral_original_matches_published_figures():
    spec = SPECS["mistralai/Voxtral-Mini-4B-Realtime-2602"]
    # 711 tensors, all BF16, 8.86 GB: antirez/voxtral.c MODEL.md, /work/shared/MODEL-NOTES.md.
    assert tensor_count(spec) == 711
    assert dtype_counts(spec) == {"BF16": 711}
    assert round(stored_bytes(spec) / 1e9, 2) == 8.86
    # 4,429,679,360 parameters: "parameter_count" of the source model in
    # sebastian-software/cuttledoc-rs spikes/voxtral-realtime-mlx-reference/model-manifest.json.
    assert parameter_count(spec) == 4_429_679_360
    t = spec.tensors
    assert t[VOXTRAL_ORIGINAL_PREFIX + "tok_embeddings.weight"] == ("BF16", (131072, 3072))
    assert t[VOXTRAL_ORIGINAL_PREFIX + "whisper_encoder.conv_layers.0.conv.weight"] == ("BF16", (1280, 128, 3))
    assert t["layers.25.ada_rms_norm_t_cond.2.weight"] == ("BF16", (3072, 32))
    assert "output.weight" not in t  # tied


def test_voxtral_mlx_4bit_matches_the_pinned_repo():
    """mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit@fdebf7b2 as pinned by
    sebastian-software/cuttledoc-rs (model-manifest.json and its MLX shim's layout check)."""
    spec = SPECS["mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit"]
    tensors = spec.tensors
    assert list(spec.shards) == ["model.safetensors"]
    assert tensor_count(spec) == 1523
    assert dtype_counts(spec) == {"F32": 300, "F16": 817, "U32": 406}
    assert len(quantized_modules(tensors)) == 406
    close_to_real_file(spec, "model.safetensors", 3_133_798_126)
    # mlx-lm writes the index and config with indent=4: byte-exact with the pinned files
    # (118,632 and 1,513 bytes), so every tensor name and the config's fields are the real ones.
    assert len(json.dumps(spec.files[INDEX_FILE], indent=4)) == 118_632
    assert len(json.dumps(spec.files["config.json"], indent=4)) == 1_513
    expected = {  # the shim's expect_shape list
        "encoder.conv_layers_0_conv.conv.weight": (1280, 3, 128),
        "encoder.conv_layers_1_conv.conv.weight": (1280, 3, 1280),
        "encoder.transformer_layers.0.attention.wq.weight": (2048, 160),
        "encoder.transformer_layers.31.attention.wq.weight": (2048, 160),
        "encoder.audio_language_projection_0.weight": (3072, 5120),
        "encoder.audio_language_projection_2.weight": (3072, 3072),
        "decoder.tok_embeddings.weight": (131072, 3072),
        "decoder.layers.0.attention.wq.weight": (4096, 384),
        "decoder.layers.25.attention.wq.weight": (4096, 384),
        "decoder.layers.0.ada_rms_norm_t_cond.ada_down.weight": (32, 3072),
        "decoder.layers.25.ada_rms_norm_t_cond.ada_up.weight": (3072, 32),
        "decoder.norm.weight": (3072,),
    }  # fmt: skip
    assert {k: tensors[k][1] for k in expected} == expected
    # The token embedding ships unquantized fp16 (768 MiB): T0mSIlver/localvoxtral
    # convert-qhead-checkpoint.py; mlx-audio-swift PR #232.
    assert tensors["decoder.tok_embeddings.weight"][0] == "F16"
    assert tensor_bytes(tensors["decoder.tok_embeddings.weight"]) == 768 * 2**20
    assert spec.quantization == {"group_size": 64, "bits": 4, "mode": "affine"}
    assert parameter_count(spec) == parameter_count(SPECS["mistralai/Voxtral-Mini-4B-Realtime-2602"])


def test_voxtral_mlx_fp16_matches_published_size():
    spec = SPECS["mlx-community/Voxtral-Mini-4B-Realtime-2602-fp16"]
    # 8.87 GB (a public catalogue's size for this repo; 8.86 GB would mean all 16-bit).
    assert round(stored_bytes(spec) / 1e9, 2) == 8.87
    assert sorted(spec.shards) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert all(sum(tensor_bytes(t) for t in s.values()) <= 5 << 30 for s in spec.shards.values())
    assert tensor_count(spec) == 711
    assert parameter_count(spec) == 4_429_679_360


def test_qwen3_asr_mlx_0_6b_8bit_matches_the_pinned_repo():
    """mlx-community/Qwen3-ASR-0.6B-8bit@89e96d92 as pinned by sebastian-software/cuttledoc-rs
    (spikes/qwen3-mlx-direct/model-manifest.json and its MLX shim's layout check)."""
    spec = SPECS["mlx-community/Qwen3-ASR-0.6B-8bit"]
    tensors = spec.tensors
    assert tensor_count(spec) == 1005
    assert dtype_counts(spec) == {"BF16": 808, "U32": 197}
    assert len(quantized_modules(tensors)) == 197
    close_to_real_file(spec, "model.safetensors", 1_006_229_426)
    assert len(json.dumps(spec.files[INDEX_FILE], indent=4)) == 71_815  # byte-exact: names are real
    expected = {
        "audio_tower.conv2d1.weight": (480, 3, 3, 1), "audio_tower.conv2d2.weight": (480, 3, 3, 480),
        "audio_tower.conv2d3.weight": (480, 3, 3, 480), "audio_tower.conv_out.weight": (896, 7680),
        "audio_tower.layers.0.self_attn.q_proj.weight": (896, 896),
        "audio_tower.layers.17.self_attn.q_proj.weight": (896, 896), "audio_tower.proj2.weight": (1024, 896),
        "model.embed_tokens.weight": (151936, 256), "model.embed_tokens.scales": (151936, 16),
        "model.embed_tokens.biases": (151936, 16), "model.layers.0.self_attn.q_proj.weight": (2048, 256),
        "model.layers.0.self_attn.q_proj.scales": (2048, 16), "model.layers.27.mlp.down_proj.weight": (1024, 768),
        "model.norm.weight": (1024,),
    }  # fmt: skip
    assert {k: tensors[k][1] for k in expected} == expected
    assert "audio_tower.layers.18.self_attn.q_proj.weight" not in tensors
    assert "model.layers.28.self_attn.q_proj.weight" not in tensors
    assert "lm_head.weight" not in tensors


@pytest.mark.parametrize(("name", "gib"), [
    # "safetensors mmap files" 1.747 GiB / 4.376 GiB: antirez/qwen-asr README.md (memory table).
    ("Qwen/Qwen3-ASR-0.6B", 1.747),
    ("Qwen/Qwen3-ASR-1.7B", 4.376),
])  # fmt: skip
def test_qwen3_asr_originals_match_published_file_sizes(name, gib):
    spec = SPECS[name]
    files = sum(safetensors_file_bytes(spec, f) for f in spec.shards)
    assert round(files / 2**30, 3) == gib
    assert set(dtype_counts(spec)) == {"BF16"}
    # antirez/qwen-asr download_model.sh: 0.6B ships one model.safetensors, 1.7B two shards.
    assert len(spec.shards) == (1 if name.endswith("0.6B") else 2)
    assert "thinker.lm_head.weight" in spec.tensors  # tied, but stored (MODEL.md)


@pytest.mark.parametrize(("name", "billions"), [
    ("mlx-community/Llama-3.2-1B-Instruct-4bit", 1.24),  # 1.24B: HF model page (card table: "1B (1.23B)")
    ("mlx-community/Llama-3.2-3B-Instruct-4bit", 3.21),  # "3B (3.21B)": Llama 3.2 model card
    ("mlx-community/Meta-Llama-3.1-8B-Instruct-4bit", 8.03),  # 8.03B: Llama 3.1 8B HF model page
])  # fmt: skip
def test_llama_parameter_counts(name, billions):
    spec = SPECS[name]
    assert round(parameter_count(spec) / 1e9, 2) == billions
    assert spec.quantization == {"group_size": 64, "bits": 4}
    # mlx-lm quantizes every Linear and the embedding; only the norms stay float.
    floats = [k for k, (d, _) in spec.tensors.items() if d != "U32" and not k.endswith((".scales", ".biases"))]
    assert all(k.endswith("norm.weight") for k in floats)


def test_llama_3b_matches_the_repo_file_size():
    # model.safetensors 1,807,496,278 bytes: mlx-community/Llama-3.2-3B-Instruct-4bit@7f0dc925
    # (Hugging Face metadata quoted in a public research note).
    spec = SPECS["mlx-community/Llama-3.2-3B-Instruct-4bit"]
    close_to_real_file(spec, "model.safetensors", 1_807_496_278)
    # /work/shared/MODEL-NOTES.md: 1.81 GB of weights.
    assert round(stored_bytes(spec) / 1e9, 2) == 1.81


@pytest.mark.parametrize(("name", "millions"), [
    # openai/whisper README model table: base 74 M, small 244 M, turbo 809 M parameters (OpenAI's
    # rounding; transformers' count, which this is, gives 72.6 M / 241.7 M / 808.9 M).
    ("openai/whisper-base.en", 74),
    ("openai/whisper-small.en", 244),
    ("openai/whisper-large-v3-turbo", 809),
])  # fmt: skip
def test_whisper_parameter_counts(name, millions):
    spec = SPECS[name]
    assert abs(parameter_count(spec) / 1e6 - millions) / millions < 0.025
    assert "proj_out.weight" not in spec.tensors


def test_whisper_turbo_is_float16():
    # "approximately 809 million parameters and a safetensors checkpoint around 1.62 GB": a summary
    # of the openai/whisper-large-v3-turbo model card (drose.io); 2 bytes a parameter.
    spec = SPECS["openai/whisper-large-v3-turbo"]
    assert round(safetensors_file_bytes(spec, "model.safetensors") / 1e9, 2) == 1.62
    assert dtype_counts(spec) == {"F16": 587}


# --- generators vs this repo's test builders (tiny configs) -------------------------------------


def test_voxtral_original_generator_matches_the_voxtral_builder(voxtral_dirs):
    written = folder_tensors(voxtral_dirs["original"])
    assert written == voxtral_original_tensors(VOXTRAL_TINY_PARAMS, "F32")
    assert folder_tensors(voxtral_dirs["original_bf16"]) == voxtral_original_tensors(VOXTRAL_TINY_PARAMS, "BF16")


def test_voxtral_mlx_generator_matches_the_voxtral_builder(voxtral_dirs):
    """The builder's mlx folders are float32 throughout; names and shapes must agree, and its
    "old 4-bit" folder uses the February 2026 predicate the mlx-community conversion was made with."""
    config = voxtral_mlx_config(VOXTRAL_TINY_PARAMS)
    theirs = voxtral_tiny_mlx_config()
    assert {k: config[k] for k in ("decoder", "encoder_args", "model_type")} == theirs
    assert names_and_shapes(folder_tensors(voxtral_dirs["mlx"])) == names_and_shapes(voxtral_mlx_tensors(config))
    q4 = voxtral_mlx_config(VOXTRAL_TINY_PARAMS, {"group_size": 64, "bits": 4})
    assert names_and_shapes(folder_tensors(voxtral_dirs["mlx_q4_old"])) == names_and_shapes(voxtral_mlx_tensors(q4))


def test_qwen3_asr_generators_match_the_qwen3_builder(qwen3_original, qwen3_mlx_8bit, qwen3_mlx_4bit):
    config = qwen3_tiny_config()
    assert folder_tensors(qwen3_original) == qwen3_asr_original_tensors(config, "F32")
    for folder, bits in ((qwen3_mlx_8bit, 8), (qwen3_mlx_4bit, 4)):
        # The builder quantizes float32 weights, so its scales are float32 too.
        assert folder_tensors(folder) == qwen3_asr_mlx_tensors(with_quantization(config, bits), "F32")


def test_whisper_generator_matches_save_pretrained(hf_tiny_dir):
    tensors, metadata, _ = read_header(hf_tiny_dir / "model.safetensors")
    assert metadata == {"format": "pt"}
    assert tensors == whisper_transformers_tensors(TINY_HF_CONFIG, "F32")


@pytest.mark.parametrize("tie", [True, False])
def test_llama_generator_matches_mlx_lm_quantize_and_save(tmp_path, tie):
    from tests.rewrite.tiny_llm import llama_config as tiny_llama_config
    from tests.rewrite.tiny_llm import write_llm

    folder = write_llm(tmp_path, tiny_llama_config(tie=tie), bits=4, dtype="float16")
    config = json.loads((folder / "config.json").read_text())
    tensors, metadata, _ = read_header(folder / "model.safetensors")
    assert metadata == {"format": "mlx"}
    assert tensors == llama_mlx_tensors(config, "F16")
    index = json.loads((folder / INDEX_FILE).read_text())
    spec = llama_mlx_spec("tiny", config)
    assert index == spec.files[INDEX_FILE]  # mlx-lm's own index, total_parameters included


# --- full size vs transformers (meta device: shapes only) -----------------------------------------


@pytest.mark.parametrize("name", ["openai/whisper-base.en", "openai/whisper-small.en",
                                  "openai/whisper-large-v3-turbo"])  # fmt: skip
def test_whisper_specs_match_transformers(name):
    torch = pytest.importorskip("torch")
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    spec = SPECS[name]
    config = WhisperConfig(**{k: v for k, v in spec.config.items() if not k.startswith("_")})
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state.pop("proj_out.weight") == state["model.decoder.embed_tokens.weight"]  # tied: not stored
    assert state == names_and_shapes(spec.tensors)


@pytest.mark.parametrize("size", ["0.6B", "1.7B"])
def test_qwen3_asr_specs_match_transformers(size):
    torch = pytest.importorskip("torch")
    from transformers import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration

    thinker = qwen3_asr_config(size)["thinker_config"]
    text = {k: v for k, v in thinker["text_config"].items() if k not in ("model_type", "rope_scaling", "rope_theta")}
    config = Qwen3ASRConfig(
        audio_config={k: v for k, v in thinker["audio_config"].items() if k != "model_type"},
        text_config={**text, "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0}},
        audio_token_id=thinker["audio_token_id"], tie_word_embeddings=True,
    )  # fmt: skip
    with torch.device("meta"):
        model = Qwen3ASRForConditionalGeneration(config)
    state = {k: tuple(v.shape) for k, v in qwen3_builders.hf_to_original(dict(model.state_dict())).items()}
    assert state == names_and_shapes(SPECS[f"Qwen/Qwen3-ASR-{size}"].tensors)


def test_voxtral_original_spec_matches_transformers():
    torch = pytest.importorskip("torch")
    from transformers import (
        VoxtralRealtimeConfig,
        VoxtralRealtimeForConditionalGeneration,
    )

    from asr.voxtral.weights import hf_to_ours

    p = VOXTRAL_PARAMS
    e = p["multimodal"]["whisper_model_args"]["encoder_args"]
    audio = {
        "hidden_size": e["dim"], "intermediate_size": e["hidden_dim"], "num_hidden_layers": e["n_layers"],
        "num_attention_heads": e["n_heads"], "head_dim": e["head_dim"], "num_mel_bins": 128,
        "sliding_window": e["sliding_window"], "rms_norm_eps": e["norm_eps"],
        "rope_parameters": {"rope_type": "default", "rope_theta": e["rope_theta"]},
    }  # fmt: skip
    text = {
        "hidden_size": p["dim"], "intermediate_size": p["hidden_dim"], "num_hidden_layers": p["n_layers"],
        "num_attention_heads": p["n_heads"], "num_key_value_heads": p["n_kv_heads"], "head_dim": p["head_dim"],
        "vocab_size": p["vocab_size"], "sliding_window": p["sliding_window"], "rms_norm_eps": p["norm_eps"],
        "rope_parameters": {"rope_type": "default", "rope_theta": p["rope_theta"]},
    }  # fmt: skip
    config = VoxtralRealtimeConfig(audio_config=audio, text_config=text, downsample_factor=4)
    with torch.device("meta"):
        model = VoxtralRealtimeForConditionalGeneration(config)
    # transformers' names mapped to ours (= the original's without the embedding-module prefix);
    # the converter keeps torch's conv layout, so shapes compare directly.
    state = {hf_to_ours(k): tuple(v.shape) for k, v in model.state_dict().items()}
    assert state.pop("lm_head.weight") == (131072, 3072)  # tied, not in consolidated.safetensors
    original = names_and_shapes(voxtral_original_tensors(p))
    assert state == {k.removeprefix(VOXTRAL_ORIGINAL_PREFIX): s for k, s in original.items()}


# --- our loaders accept them -----------------------------------------------------------------------


ASR_SPECS = sorted(n for n in SPECS if "Llama" not in n)
LLM_SPECS = sorted(n for n in SPECS if "Llama" in n)


def _asr_loader(name: str):
    import asr.qwen3.weights as qwen3
    import asr.voxtral.weights as voxtral
    import asr.whisper.weights as whisper

    return voxtral if "Voxtral" in name else qwen3 if "Qwen" in name else whisper


@pytest.mark.parametrize("name", ASR_SPECS)
def test_full_size_asr_specs_pass_our_loaders(name, tmp_path, no_eval):
    """The public load_checkpoint on the sparse full-size files: layout detection, config
    parsing, name mapping, quantization detection and the shape check against our model."""
    if not _sparse_supported(tmp_path):
        pytest.skip("this filesystem has no sparse files")
    spec = SPECS[name]
    before = mx.get_active_memory()
    checkpoint = _asr_loader(name).load_checkpoint(sparse(spec, tmp_path / "repo"), dtype=None)
    expected_layout = "transformers" if name.startswith("openai/") else "mlx" if "mlx-community" in name else "original"
    assert checkpoint.layout == expected_layout
    q = spec.quantization
    assert checkpoint.quantization == ({**q, "mode": q.get("mode", "affine")} if q else None)
    quantized = {k for k, v in checkpoint.weights.items() if v.dtype == mx.uint32}
    assert len(quantized) == len(quantized_modules(spec.tensors))
    assert mx.get_active_memory() - before < 64 << 20  # nothing was read


@pytest.mark.parametrize("name", LLM_SPECS)
def test_full_size_llm_specs_pass_mlx_lm(name, tmp_path):
    """mlx_lm's own loader, lazily and strictly (every parameter present, every shape right)."""
    if not _sparse_supported(tmp_path):
        pytest.skip("this filesystem has no sparse files")
    from mlx_lm.utils import load_model

    before = mx.get_active_memory()
    model, config = load_model(sparse(SPECS[name], tmp_path / "repo"), lazy=True, strict=True)
    assert config["quantization"] == {"group_size": 64, "bits": 4}
    assert type(model.model.embed_tokens).__name__ == "QuantizedEmbedding"
    assert mx.get_active_memory() - before < 64 << 20


def _tiny_asr_specs() -> dict[str, CheckpointSpec]:
    qwen = qwen3_tiny_config()
    return {
        "voxtral-original": voxtral_original_spec("tiny", VOXTRAL_TINY_PARAMS, "BF16"),
        "voxtral-mlx-4bit": voxtral_mlx_spec(
            "tiny", voxtral_mlx_config(VOXTRAL_TINY_PARAMS, {"group_size": 64, "bits": 4, "mode": "affine"})),
        "voxtral-mlx-fp16-sharded": voxtral_mlx_spec("tiny", voxtral_mlx_config(VOXTRAL_TINY_PARAMS),
                                                     max_shard_bytes=300_000),
        "qwen3-original-sharded": qwen3_asr_original_spec("tiny", qwen, max_shard_bytes=200_000),
        "qwen3-mlx-8bit": qwen3_asr_mlx_spec("tiny", with_quantization(qwen, 8)),
        "qwen3-mlx-4bit": qwen3_asr_mlx_spec("tiny", with_quantization(qwen, 4)),
        "whisper": whisper_spec("tiny", dict(TINY_HF_CONFIG, model_type="whisper"), "F16"),
    }  # fmt: skip


@pytest.mark.parametrize("kind", sorted(_tiny_asr_specs()))
def test_tiny_specs_with_data_load_and_build(kind, tmp_path):
    spec = _tiny_asr_specs()[kind]
    if "sharded" in kind:
        assert len(spec.shards) > 1
    loader = _asr_loader({"voxtral": "Voxtral", "qwen3": "Qwen", "whisper": "whisper"}[kind.split("-")[0]])
    checkpoint = loader.load_checkpoint(materialize(spec, tmp_path / "repo"), dtype=None)
    stored = {DTYPE_NAMES[v.dtype] for v in checkpoint.weights.values()}
    assert stored <= set(dtype_counts(spec))
    loader.build_model(checkpoint)  # strict load into our model


def test_tiny_llm_spec_with_data_runs_in_mlx_lm(tmp_path):
    from mlx_lm.utils import load_model

    from tests.rewrite.tiny_llm import llama_config as tiny_llama_config

    config = dict(tiny_llama_config(tie=False), quantization={"group_size": 64, "bits": 4})
    model, _ = load_model(materialize(llama_mlx_spec("tiny", config), tmp_path / "repo"), strict=True)
    logits = model(mx.array([[1, 2, 3]]))
    assert logits.shape == (1, 3, config["vocab_size"])

