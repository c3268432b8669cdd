"""Write the bundled English lexicon (``crnn_ocr/assets/lexicon_en.txt.gz``) from wordfreq.

Run with the training extras installed: ``python scripts/build_lexicon.py [--top-n 50000]``. The output is
deterministic (gzip without a timestamp), so a rebuild from the same wordfreq version changes nothing.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from crnn_ocr.lexicon import LEXICON_FILE, LEXICON_SIZE, build_word_list


def main() -> None:
    """Build the list and report its size."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top-n", type=int, default=LEXICON_SIZE, help="words of wordfreq's English ranking")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "crnn_ocr" / LEXICON_FILE)
    args = ap.parse_args()
    words = build_word_list(args.top_n)
    data = gzip.compress(("\n".join(words) + "\n").encode("utf-8"), compresslevel=9, mtime=0)
    args.out.write_bytes(data)
    print(f"{len(words)} words, {len(data) / 1024:.0f} KiB -> {args.out}")


if __name__ == "__main__":
    main()
