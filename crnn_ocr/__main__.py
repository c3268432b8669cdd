"""``python -m crnn_ocr`` runs the command line."""

from crnn_ocr.cli import main

main()
