"""Writes asr/data/common_words.txt.gz: the lower-case English words that are one token
(with its leading space) of GPT-2's byte-level BPE vocabulary, as Whisper's tokenizer.json
holds it. A word frequent enough to earn its own token is an ordinary word, and the
vocabulary snapper (asr/vocabulary.py) never takes one alone for a name.

    python tools/make_common_words.py [TOKENIZER_JSON]   (default: the bundled tiny.en's)
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "asr" / "data" / "common_words.txt.gz"


def main() -> None:
    if len(sys.argv) > 1:
        source = Path(sys.argv[1])
    else:
        sys.path.insert(0, str(ROOT))
        from asr.whisper.bundled import bundled_model_dir

        source = bundled_model_dir() / "tokenizer.json"
    vocab = json.loads(source.read_text(encoding="utf-8"))["model"]["vocab"]
    words = sorted({k[1:] for k in vocab if k.startswith("Ġ") and k[1:].isascii() and k[1:].isalpha()
                    and k[1:].islower()})
    # mtime=0: the same words give the same bytes.
    OUT.write_bytes(gzip.compress(("\n".join(words) + "\n").encode("ascii"), mtime=0))
    print(f"{OUT.relative_to(ROOT)}: {len(words)} words, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
