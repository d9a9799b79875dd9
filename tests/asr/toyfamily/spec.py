"""The toy family's facts: what asr/<family>/spec.py holds for a real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from asr.base import Capabilities
from asr.runtime.family import CatalogueModel, FamilySpec, weights_summary
from asr.runtime.footprint import read_json_object

NAMES = {"toy-small": "acme/toy-small", "toy-large": "acme/toy-large"}
DEFAULT_MODEL = "toy-small"


def working(shape: Mapping[str, int], item: int) -> tuple[int, int]:
    """A cache of `context` rows of `width` floats; activations of one row."""
    return shape["context"] * shape["width"] * item, shape["width"] * item


def shape(folder: Path) -> dict[str, int]:
    config = read_json_object(folder / "config.json")
    return {"context": int(config["context"]), "width": int(config["width"])}


def claims_files(folder: Path) -> bool:
    return False


def claims_config(folder: Path, config: dict[str, Any]) -> bool:
    return config.get("model_type") == "toy_asr"


CATALOGUE = (
    CatalogueModel("toy-small", "asr", "toy", "toy", "acme/toy-small", "en", 5, True,
                   weights_summary(4000, 1000), {"context": 100, "width": 10}, "F32"),
)

SPEC = FamilySpec(
    name="toy", title="Toy", engine="tests.asr.toyfamily.engine:ToyEngine", default_model=DEFAULT_MODEL,
    names=NAMES,
    capabilities=Capabilities(native_streaming=False, delay_control=False, word_timestamps=False,
                              rewrite_experimental=False, languages=("en",)),
    layouts=("toy",), working=working, shape=shape, claims_files=claims_files, claims_config=claims_config,
    catalogue=CATALOGUE,
)
