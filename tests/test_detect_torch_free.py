"""Detection and the page pipeline must not pull in torch (they run in the slim service image)."""

from __future__ import annotations

import subprocess
import sys


def test_detect_and_pipeline_never_import_torch() -> None:
    code = ("import sys\n"
            "import crnn_ocr.detect, crnn_ocr.detect.classical, crnn_ocr.detect.metrics, crnn_ocr.detect.bench\n"
            "import crnn_ocr.detect.draw, crnn_ocr.detect.db, crnn_ocr.detect.db_targets, crnn_ocr.pipeline\n"
            "from crnn_ocr.detect import create_detector\n"
            "import numpy as np\n"
            "create_detector('classical')(np.full((50, 80), 255, np.uint8))\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
