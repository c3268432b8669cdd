"""Synthetic text lines for training: fonts, corpora, rendering and degradations, as an indexable stream.

>>> from crnn_ocr.synth import SynthConfig, SynthStream
>>> stream = SynthStream(SynthConfig.load(None), seed=1234)  # doctest: +SKIP
>>> image, text = stream[0]  # doctest: +SKIP
"""

from crnn_ocr.synth.config import SynthConfig
from crnn_ocr.synth.stream import SynthStream

__all__ = ["SynthConfig", "SynthStream"]
