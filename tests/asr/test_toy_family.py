"""Adding a model family is one folder and one registry line: the test-only toy family
(tests/asr/toyfamily/: a spec and a trivial engine), once registered, is found through the
same lookups the app uses — engine names, default model, loading, memory estimate and budget,
catalogue, and which family a folder holds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save

from asr import registry
from asr.base import SAMPLE_RATE, Final
from tests.asr.toyfamily.spec import SPEC

GiB = 2**30


@pytest.fixture
def toy():
    registry.register(SPEC)  # the one line a real family has in registry.FAMILY_SPECS
    yield SPEC
    registry.unregister(SPEC.name)


def test_the_registry_knows_its_names_and_default(toy):
    assert "toy" in registry.engine_names()
    assert registry.family("toy") is toy
    assert registry.default_model("toy") == "toy-small"
    assert registry.family("toy").names["toy-large"] == "acme/toy-large"


def test_it_is_gone_once_unregistered(toy):
    registry.unregister("toy")
    assert "toy" not in registry.engine_names()
    with pytest.raises(Exception, match="unknown engine 'toy'"):
        registry.load_engine("toy")
    registry.register(toy)


def test_its_engine_loads_and_transcribes(toy):
    engine = registry.load_engine("toy")
    assert engine.model == "toy-small" and engine.capabilities == toy.capabilities
    assert engine.memory_estimate().total_bytes == 4000 + 100 * 10 * 4 + 10 * 4
    session = engine.start_session()
    session.feed_audio(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert session.finish() == [Final("toy", 0.0, 1.0)]


def test_the_catalogue_and_budget_use_its_spec(toy):
    from notetaker import catalogue
    from notetaker.budget import Machine, footprint_of, from_catalogue

    entry = catalogue.by_name("toy-small")
    assert entry is not None and entry in catalogue.of_kind("asr") and entry in catalogue.CATALOGUE
    machine = Machine("Linux", "x86_64", 16 * GiB, "cpu")
    f = footprint_of("toy", entry.weights, entry.shape, "F32", machine)
    assert (f.weights, f.kv, f.activations) == (1000 * 4, 100 * 10 * 4, 10 * 4)
    c = from_catalogue(entry, machine, None)
    assert c.engine == "toy" and c.footprint == f


def test_a_folder_of_its_files_is_detected_and_costed(toy, tmp_path):
    from notetaker.budget import Machine, from_folder, read_folder
    from notetaker.models import detect_family

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "toy_asr", "context": 50, "width": 8}))
    (tmp_path / "model.safetensors").write_bytes(save({"w": np.zeros((8, 8), dtype=np.float32)}))
    assert detect_family(tmp_path) == ("toy", "asr", "toy")
    weights, shape, dtype = read_folder("toy", tmp_path)
    assert shape == {"context": 50, "width": 8} and weights.float_elements == 64 and dtype == "F32"
    c = from_folder("toy", "asr", "toy", tmp_path, Machine("Linux", "x86_64", 16 * GiB, "cpu"))
    assert c.footprint.total == 64 * 4 + 50 * 8 * 4 + 8 * 4


def test_unregistered_it_is_not_detected(tmp_path):
    from asr.base import ModelNotFoundError
    from notetaker.models import detect_family

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "toy_asr"}))
    with pytest.raises(ModelNotFoundError, match="a toy_asr model"):
        detect_family(tmp_path)
