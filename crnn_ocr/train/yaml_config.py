"""Training configs as dataclasses read from YAML: unknown keys rejected, so a typo never falls back silently.

Both the recogniser's and the detector's configs derive from :class:`YamlConfig`; each declares which of its
fields hold lists of nested dataclasses.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml


class YamlConfig:
    """``from_dict`` / ``load`` / ``to_dict`` for a dataclass config (mix in before ``@dataclass``).

    ``NESTED`` maps a field name to the dataclass its list items are built as (e.g. data sources).
    """

    NESTED: ClassVar[dict[str, type]] = {}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Build from a plain dict; unknown keys anywhere raise ``ValueError``."""
        return build_dataclass(cls, d, "config", cls.NESTED)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a YAML file."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config must be a mapping")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints and YAML)."""
        return asdict(self)  # type: ignore[call-overload]


def build_dataclass(cls: type, d: dict[str, Any], where: str, nested: dict[str, type] | None = None) -> Any:
    """``cls(**d)``, with the ``nested`` list fields built item by item; errors name the offending key.

    Args:
        cls: the dataclass to build.
        d: its fields as a plain mapping (a subset: the rest keep their defaults).
        where: the key path for error messages, e.g. ``config.sources[0]``.
        nested: field name -> dataclass of that field's list items.
    """
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    kwargs = {}
    for k, v in d.items():
        sub = (nested or {}).get(k)
        if sub is not None:
            if not isinstance(v, list):
                raise ValueError(f"{where}.{k}: expected a list")
            v = [build_dataclass(sub, x, f"{where}.{k}[{i}]") for i, x in enumerate(v)]
        kwargs[k] = v
    return cls(**kwargs)
