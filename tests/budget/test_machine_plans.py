"""Plans for 8, 16, 32 and 64 GB machines, from the catalogue models' real shapes written as
safetensors headers (tests/budget/checkpoints.py, which says where each shape came from),
checked against numbers worked out by hand below.

Every model is "downloaded" (its header-only folder), so the plan picks among all of them by
what their headers and configs say. Apple-silicon working sets are what MLX reports as
`max_recommended_working_set_size`: about two thirds of memory (10.67 GB on a 16 GB M4,
exo-explore/exo#1672; "~2/3 of unified memory", SceneWorks#2168); 64 GB is taken as 48 GB,
which the 2 + 25 % reserve gives anyway.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.whisper.engine import bundled_model_dir
from notetaker.budget import GiB, Machine, Request, from_catalogue, make_plan, read_folder
from notetaker.catalogue import CATALOGUE, of_kind
from tests.budget.checkpoints import SPECS, write_checkpoint

FAMILY = {"whisper": "whisper", "voxtral": "voxtral", "qwen3": "qwen3", "llm": "llm"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Catalogue name → a folder holding that model's published config and tensor headers."""
    root = tmp_path_factory.mktemp("headers")
    out = {}
    for m in CATALOGUE:
        if m.repo is None:
            out[m.name] = bundled_model_dir()
        else:
            out[m.name] = write_checkpoint(SPECS[m.repo], root / m.repo.replace("/", "--"))
    return out


def test_every_catalogue_model_has_a_header_fixture():
    assert {m.repo for m in CATALOGUE if m.repo} <= set(SPECS)


@pytest.mark.parametrize("model", CATALOGUE, ids=lambda m: m.name)
def test_catalogue_numbers_are_what_the_headers_say(model, folders):
    weights, shape, dtype = read_folder(model.family, folders[model.name])
    assert weights == model.weights
    assert shape == model.shape
    assert dtype == model.float_dtype


def mac(total_gb: int, working_set: int) -> Machine:
    return Machine("Darwin", "arm64", total_gb * GiB, "gpu", "metal", working_set_bytes=working_set)


def plan_on(machine: Machine, folders, request=Request()):
    cands = {m.name: from_catalogue(m, machine, folders[m.name]) for m in CATALOGUE}

    def candidates(kind):
        return [cands[m.name] for m in of_kind(kind)]

    def resolve(kind, engine, model):
        return cands[model]

    return make_plan(machine, request, candidates, resolve, bundled=cands["tiny.en"])


# Hand-computed footprints (bytes). Metal keeps the stored precision (float items of 2).
VOX_KV = 2 * 26 * 8192 * 8 * 128 * 2 + 2 * 32 * (2 * 750 - 1) * 32 * 64 * 2  # decoder window, encoder 2w - 1
VOX_ACTS = 131072 * 4 * 2 + 750 * (1280 * 4 + 5120 * 3) * 2  # two rows of logits, encoder window
VOX_4BIT = 3_133_615_104 + VOX_KV + VOX_ACTS  # stored bytes of the 4-bit files
VOX_FP16 = 8_870_505_472 + VOX_KV + VOX_ACTS
CONV1 = 30 * 480 * 64 * 50 * 2  # Qwen3-ASR's first conv output for 30 one-second chunks
QWEN3_ACTS = CONV1 + CONV1 * 66 * 52 // (64 * 50) + CONV1 * 9 // 4 + CONV1 // 4 + 151936 * 4  # conv2 peak, logits
QWEN3_KV = 2 * 28 * 8 * 128 * 1024 * 2  # 1024 tokens
QWEN17_4BIT = 1_602_956_544 + QWEN3_KV + QWEN3_ACTS


def llama(weights: int, layers: int, hidden: int, ffn: int, context: int, item: int = 2, heads: int = 0) -> int:
    kv = 2 * layers * 8 * 128 * context * item  # 8 KV heads of 128 (Llama 3.1-8B, 3.2-3B)
    chunk = min(2048, context)
    scores = heads * chunk * context * 4  # CPU only (heads=0 on a GPU: fused attention)
    return weights + kv + chunk * (3 * ffn + 4 * hidden) * item + scores + 128256 * 4


def test_hand_numbers_agree_with_the_budget_on_a_16gb_mac(folders):
    m16 = mac(16, int(16 * GiB * 2 / 3))
    vox = from_catalogue(next(m for m in CATALOGUE if m.name == "voxtral-mini-4b-realtime-4bit"), m16,
                         folders["voxtral-mini-4b-realtime-4bit"])
    assert vox.footprint.total == VOX_4BIT == 4_430_752_768


def test_8gb_mac(folders):
    budget = int(8 * GiB * 2 / 3)  # 5.33 GB working set < 8 - 2 GB
    p = plan_on(mac(8, budget), folders)
    assert p.budget == budget
    # Half the budget is 2.67 GB: every Voxtral (4-bit: 4.13 GB), Qwen3-ASR 1.7B in bf16 and
    # 8-bit (2.80 GB) are too big; the 1.7B 4-bit takes 2.00 GB.
    assert p.asr.name == "qwen3-asr-1.7b-4bit" and p.asr.footprint.total == QWEN17_4BIT == 2_142_406_400
    # Beside it 3.34 GB remain: Llama 3.1-8B does not fit even at 4k; Llama 3.2-3B does at 8k
    # (1.81 GB + 0.94 GB KV + 0.15 GB prefill), not at 16k (3.57 GB).
    assert p.rewrite.name == "llama-3.2-3b" and p.rewrite_live and p.rewrite.context == 8192
    assert p.rewrite.footprint.total == llama(1_807_423_488, 28, 3072, 8192, 8192) == 2_898_455_552
    assert p.peak == QWEN17_4BIT + 2_898_455_552
    assert p.cache_limit == budget - p.peak == 685_761_109


def test_16gb_mac_runs_voxtral_4bit(folders):
    budget = int(16 * GiB * 2 / 3)  # 10.67 GB
    p = plan_on(mac(16, budget), folders)
    # fp16 and bf16 Voxtral (9.47 GB) exceed half the budget (5.33 GB); 4-bit takes 4.13 GB.
    assert p.asr.name == "voxtral-mini-4b-realtime-4bit"
    assert p.asr.footprint.total == VOX_4BIT
    # 6.54 GB remain: Llama 3.1-8B at 32k takes 8.43 GB, at 16k 6.43 GB.
    assert p.rewrite.name == "llama-3.1-8b" and p.rewrite_live and p.rewrite.context == 16384
    assert p.rewrite.footprint.total == llama(4_517_404_672, 32, 4096, 14336, 16384) == 6_908_670_976
    assert p.during == [p.asr, p.rewrite] and p.after == []
    assert p.memory_limit == budget
    assert p.cache_limit == budget - (VOX_4BIT + 6_908_670_976) == 113_822_378


def test_32gb_mac(folders):
    budget = int(32 * GiB * 2 / 3)  # 21.33 GB < 32 - 8 GB
    p = plan_on(mac(32, budget), folders)
    assert p.asr.name == "voxtral-mini-4b-realtime-fp16" and p.asr.footprint.total == VOX_FP16 == 10_167_643_136
    assert p.rewrite.name == "llama-3.1-8b" and p.rewrite.context == 32768 and p.rewrite_live
    assert p.rewrite.footprint.total == llama(4_517_404_672, 32, 4096, 14336, 32768) == 9_056_154_624
    assert p.cache_limit == budget - (VOX_FP16 + 9_056_154_624) == 3_682_694_485


def test_64gb_mac(folders):
    p = plan_on(mac(64, 48 * GiB), folders)
    assert p.budget == 48 * GiB  # 64 - 16 GB reserve = the working set
    assert p.asr.name == "voxtral-mini-4b-realtime-fp16"
    assert p.rewrite.name == "llama-3.1-8b" and p.rewrite.context == 32768
    assert p.cache_limit == 12 * GiB  # a quarter of the budget: far below what is free


def test_16gb_linux_cpu(folders):
    """On the CPU: Voxtral, Qwen3-ASR and large-v3-turbo are skipped as slower than real time;
    floats are float32; Llama 3.1-8B stays 4-bit (float32 would take 32 GB) and attention
    scores are materialised."""
    p = plan_on(Machine("Linux", "x86_64", 16 * GiB, "cpu"), folders)
    assert p.budget == 12 * GiB
    small = (241_734_144 * 4  # small.en in float32
             + 4 * (2 * 12 * 1500 * 768 * 4 + 2 * 12 * 448 * 768 * 4)  # cross + self KV of 4 windows
             + 4 * 1500 * 768 * 4 * 8 + 12 * 1500 * 1500 * 4)  # their activations + one window's scores
    assert p.asr.name == "small.en" and p.asr.footprint.total == small == 1_796_881_152
    kept = 4_014_997_504 + (266_240 + 250_937_344) * 4  # packed words + floats and scales in float32
    want = llama(kept, 32, 4096, 14336, 8192, item=4, heads=32)
    assert p.rewrite.name == "llama-3.1-8b" and p.rewrite.context == 8192 and p.rewrite_live
    assert p.rewrite.footprint.total == want == 9_801_831_424
    assert "kept quantized" in p.rewrite.footprint.held_as


def test_asking_for_fp16_voxtral_on_8gb_says_what_fits_instead(folders):
    p = plan_on(mac(8, int(8 * GiB * 2 / 3)), folders,
                Request(engine="voxtral", model="voxtral-mini-4b-realtime-fp16"))
    assert not p.fits
    assert p.problem == "voxtral-mini-4b-realtime-fp16 needs 9.5 GB but this machine's budget is 5.3 GB"
    assert p.suggestion == "--engine voxtral --model voxtral-mini-4b-realtime-4bit (4.1 GB)"


@pytest.mark.parametrize("model", CATALOGUE, ids=lambda m: m.name)
def test_every_catalogue_name_is_one_its_engine_or_backend_knows(model):
    """The plan hands a catalogue name to the engine as `--model`: each must resolve to the
    catalogue's repo there."""
    if model.engine == "mlx":
        from rewrite.mlx_llm import NAMES
    else:
        from asr.registry import family

        NAMES = family(model.engine).names
    if model.repo is None:
        assert model.name == "tiny.en"  # the bundled one: the Whisper engine's default
    else:
        assert NAMES[model.name] == model.repo
