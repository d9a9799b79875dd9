"""A GGUF file as a rewrite model from the command line: `notetaker models add X.gguf`
registers it (or refuses it in one line, exit 2), and the plan runs it by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from notetaker.cli import main
from tests.app.test_models import listing, models, one_line_error


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def write_gguf(path: Path, tensor_type: str) -> Path:
    """A tiny llama GGUF header with one tensor of `tensor_type` (bytes random: only the
    header is read before the refusal)."""
    import gguf

    kind = getattr(gguf.GGMLQuantizationType, tensor_type)
    block, size = gguf.GGML_QUANT_SIZES[kind]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tensor("blk.0.attn_q.weight", np.zeros((4, 256 // block * size), np.uint8), raw_dtype=kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_add_registers_a_gguf_file(capsys, home, smollm2_gguf):
    rc, out, err = models(capsys, home, "add", str(smollm2_gguf), "--name", "smol")
    assert rc == 0, err
    assert out.startswith("smol: rewrite/mlx model")
    row = listing(capsys, home)["smol"]
    assert (row["state"], row["kind"], row["family"], row["engine"]) == ("complete", "rewrite", "llm", "mlx")
    assert row["disk_bytes"] == smollm2_gguf.stat().st_size
    assert row["memory_bytes"] > row["disk_bytes"]  # costed from its header: weights, KV cache, activations
    rc, out, err = models(capsys, home, "add", str(smollm2_gguf), "--name", "smol")
    one_line_error(rc, err, "already registered")


def _ollama_store(root: Path, gguf: Path, model: str = "smol", tag: str = "135m") -> Path:
    """Ollama's layout: a manifest naming the model layer by digest, the blob stored under it."""
    import hashlib
    import json

    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    blobs = root / "models" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"sha256-{digest}").symlink_to(gguf)
    manifest = root / "models" / "manifests" / "registry.ollama.ai" / "library" / model / tag
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + "0" * 64},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
                    "size": gguf.stat().st_size},
                   {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "1" * 64}]}))
    return manifest


def test_an_ollama_manifest_registers_the_gguf_blob_it_names(capsys, home, tmp_path, smollm2_gguf):
    manifest = _ollama_store(tmp_path / "ollama", smollm2_gguf)
    rc, out, err = models(capsys, home, "add", str(manifest))
    assert rc == 0, err
    assert out.startswith("smol-135m: rewrite/mlx model")  # named after the model and its tag
    row = listing(capsys, home)["smol-135m"]
    assert (row["state"], row["kind"], row["engine"]) == ("complete", "rewrite", "mlx")
    # a manifest whose blob is gone, and a file that is no manifest: one line each
    next((tmp_path / "ollama" / "models" / "blobs").iterdir()).unlink()
    one_line_error(*models(capsys, home, "add", str(manifest), "--name", "again")[::2], "ollama pull")
    other = tmp_path / "notes.txt"
    other.write_text("{}")
    one_line_error(*models(capsys, home, "add", str(other))[::2], "not a GGUF file")


def test_the_plan_runs_a_registered_gguf_by_name(capsys, home, smollm2_gguf):
    from notetaker.budget import plan_for, settings_for
    from notetaker.config import load_settings

    assert models(capsys, home, "add", str(smollm2_gguf), "--name", "smol")[0] == 0
    settings = load_settings({"home": str(home), "rewrite_backend": "mlx", "rewrite_model": "smol"})
    plan = plan_for(settings)
    assert plan.fits and plan.rewrite is not None and plan.rewrite.footprint is not None
    assert settings_for(settings, plan).rewrite_model == str(smollm2_gguf.resolve())


def test_add_refuses_what_is_not_a_loadable_gguf(capsys, home, tmp_path):
    rc, _, err = models(capsys, home, "add", str(tmp_path / "missing.gguf"))
    one_line_error(rc, err, "no folder or GGUF file", "missing.gguf")
    text = tmp_path / "notes.gguf"
    text.write_text("not weights\n")
    rc, _, err = models(capsys, home, "add", str(text))
    one_line_error(rc, err, "not a GGUF file")
    other = tmp_path / "notes.txt"
    other.write_text("1. budget\n")
    rc, _, err = models(capsys, home, "add", str(other))
    one_line_error(rc, err, "not a GGUF file")
    for kind in ("Q4_K", "Q5_0"):
        rc, _, err = models(capsys, home, "add", str(write_gguf(tmp_path / f"m-{kind}.gguf", kind)))
        one_line_error(rc, err, kind, "Q4_0, Q4_1, Q8_0")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(write_gguf(tmp_path / "whole.gguf", "Q4_0").read_bytes()[:40])
    rc, _, err = models(capsys, home, "add", str(cut))
    one_line_error(rc, err, "cut off")


def test_summarize_refuses_a_bad_gguf_in_one_line(capsys, home, tmp_path):
    bad = write_gguf(tmp_path / "k.gguf", "Q4_K")
    rc = main(["--home", str(home), "summarize", "1", "--backend", "mlx", "--model", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
