"""Model registry: a plain dict from name to config; no import-time registration magic.

>>> model = create_model("crnn_lite", num_classes=7155)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from crnn_ocr.models.crnn import CRNN, CRNNConfig

MODELS: dict[str, CRNNConfig] = {
    # The brief's architecture done properly: VGG-style CNN with batch norm, 2-layer BiLSTM 256.
    "crnn_vgg": CRNNConfig(
        channels=(64, 128, 256, 256, 512, 512),
        pools=((2, 2), (2, 2), (1, 1), (2, 1), (1, 1), (2, 1)),
        rnn_hidden=256,
    ),
    # The shipped model: narrow CNN (the main CPU cost), width stride 4 so narrow Latin characters and
    # repeated digits keep >= 2 frames each, a smaller BiLSTM.
    "crnn_lite": CRNNConfig(
        channels=(32, 64, 96, 128, 160),
        convs_per_stage=(1, 1, 1, 1, 1),
        pools=((2, 2), (2, 2), (2, 1), (1, 1), (2, 1)),
        rnn_hidden=128,
        stem_stride=True,
        proj=128,
    ),
    # A tiny model for tests and smoke runs.
    "crnn_tiny": CRNNConfig(
        channels=(8, 16, 16),
        convs_per_stage=(1, 1, 1),
        pools=((2, 2), (2, 2), (4, 1)),
        rnn_hidden=16,
        rnn_layers=1,
        dropout=0.0,
    ),
}


def list_models() -> list[str]:
    """Registered architecture names."""
    return sorted(MODELS)


def model_config(name: str, **overrides: Any) -> CRNNConfig:
    """The registered config of ``name`` with ``overrides`` applied."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return replace(MODELS[name], **overrides)


def create_model(name: str, num_classes: int, **overrides: Any) -> CRNN:
    """Build an untrained model of architecture ``name`` with ``num_classes`` outputs (charset + blank)."""
    return CRNN(model_config(name, num_classes=num_classes, **overrides))
