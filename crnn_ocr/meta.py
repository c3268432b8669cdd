"""What a model file says about itself: name, charset, preprocessing; stored in checkpoints and ONNX.

Keeping these with the weights means a model can never be paired with the wrong charset or
preprocessing: the engine reads them back instead of taking them from anywhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from crnn_ocr.charset import Charset
from crnn_ocr.preprocess import PreprocessConfig

PREFIX = "crnn_ocr."
FORMAT_VERSION = "1"


@dataclass(frozen=True)
class ModelMeta:
    """Self-description of a recognition model.

    Attributes:
        name: registry name of the architecture (``crnn_lite``...).
        charset: the output classes (blank excluded).
        preprocess: how input lines are prepared.
        version: free-form model version (e.g. training step).
        extra: anything else worth keeping (training data summary, samples seen...), JSON-serialisable.
    """

    name: str
    charset: Charset
    preprocess: PreprocessConfig
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        """String key/values for ONNX ``metadata_props``."""
        return {
            PREFIX + "format": FORMAT_VERSION,
            PREFIX + "name": self.name,
            PREFIX + "version": self.version,
            PREFIX + "charset": self.charset.to_text(),
            PREFIX + "charset_sha256": self.charset.sha256,
            PREFIX + "preprocess": self.preprocess.to_json(),
            PREFIX + "extra": json.dumps(self.extra, ensure_ascii=False, sort_keys=True),
        }

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMeta:
        """Read back :meth:`to_props`; a missing key or a charset whose hash does not match raises."""
        missing = [k for k in ("name", "charset", "charset_sha256", "preprocess") if PREFIX + k not in props]
        if missing:
            raise ValueError(f"model file lacks crnn-ocr metadata: {missing} (was it exported by crnn-ocr?)")
        charset = Charset.from_text(props[PREFIX + "charset"])
        if charset.sha256 != props[PREFIX + "charset_sha256"]:
            raise ValueError("model metadata is corrupt: the charset does not match its stored hash")
        return cls(
            name=props[PREFIX + "name"],
            charset=charset,
            preprocess=PreprocessConfig.from_json(props[PREFIX + "preprocess"]),
            version=props.get(PREFIX + "version", ""),
            extra=json.loads(props.get(PREFIX + "extra", "{}") or "{}"),
        )
