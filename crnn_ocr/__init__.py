"""crnn-ocr: a small, fast CRNN recogniser for mixed Chinese/English printed text."""

__version__ = "0.1.0"
