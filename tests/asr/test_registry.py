"""The registry and the family specs: cheap to import, and in step with the loaders."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr import registry

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_and_specs_load_no_mlx():
    """`notetaker --help` and the planner read specs: they must not pull in model code."""
    code = "import asr.registry, sys, json; print(json.dumps(sorted(sys.modules)))"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    loaded = {m.split(".")[0] for m in json.loads(p.stdout.splitlines()[-1])}
    assert not {"mlx", "mlx_lm", "tokenizers", "huggingface_hub"} & loaded


@pytest.mark.parametrize("spec", registry.families(), ids=lambda s: s.name)
def test_a_spec_names_the_layouts_its_loader_reads(spec):
    weights = importlib.import_module(f"asr.{spec.name}.weights")
    constants = {v for k, v in vars(weights).items() if k.startswith("LAYOUT_")}
    assert set(spec.layouts) == constants


@pytest.mark.parametrize("spec", registry.families(), ids=lambda s: s.name)
def test_a_spec_is_what_its_engine_uses(spec):
    module, cls = spec.engine.split(":")
    engine = importlib.import_module(module)
    assert getattr(engine, cls).name == spec.name
    assert spec.default_model in spec.names or spec.default_model in {m.name for m in spec.catalogue}
    assert all(m.family == spec.name and m.engine == spec.name for m in spec.catalogue)
