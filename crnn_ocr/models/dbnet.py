"""DBNet text detector: a small MobileNetV3-style backbone, an FPN neck and the DB head, built by hand.

The network maps a ``(N, 3, H, W)`` page (H, W multiples of 32) to a text *probability* map at full
resolution. In training it also returns a *threshold* map and their differentiable binarisation
``sigmoid(k * (P - T))`` (DBNet, Liao et al. 2020); inference (and the ONNX export) needs the probability
map only, which :mod:`crnn_ocr.detect.db` turns into boxes. The loss is the standard DBNet one: BCE with
3:1 hard negative mining on the probability map, L1 on the threshold map inside the border zone, dice on
the binary map, weighted 1 / 10 / 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DBNetConfig:
    """Architecture of a DBNet; stored in every checkpoint.

    Args:
        stem: channels of the stride-2 stem conv.
        stages: per backbone stage ``(expand, out_channels, blocks)``; stage ``k`` starts with a stride-2
            block, so the four stages give features at strides 4, 8, 16 and 32.
        neck: FPN channels (each level is reduced to ``neck // 4`` before the levels are concatenated).
        k: the binarisation steepness (DBNet uses 50).
        in_channels: input channels (3: BGR pages).
    """

    stem: int = 16
    stages: tuple[tuple[int, int, int], ...] = ((3, 24, 2), (3, 40, 2), (4, 80, 3), (4, 128, 2))
    neck: int = 64
    k: float = 50.0
    in_channels: int = 3

    def to_dict(self) -> dict:
        """Plain dict for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DBNetConfig:
        """Inverse of :meth:`to_dict` (lists from YAML or checkpoints become tuples)."""
        d = dict(d)
        if "stages" in d:
            d["stages"] = tuple(tuple(int(v) for v in s) for s in d["stages"])
        return cls(**d)


DBNET_MODELS: dict[str, DBNetConfig] = {
    "dbnet_lite": DBNetConfig(),
    "dbnet_tiny": DBNetConfig(stem=8, stages=((2, 8, 1), (2, 16, 1), (2, 16, 1), (2, 24, 1)), neck=16),
}
"""Registered detector architectures: the shipped size and a tiny one for tests."""


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: 1x1 expand, 3x3 depthwise (maybe strided), 1x1 project; residual when shapes match."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(_cbr(cin, mid, 1), _cbr(mid, mid, 3, stride, groups=mid),
                                  _cbr(mid, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output."""
        y = self.body(x)
        return x + y if self.residual else y


class DBNet(nn.Module):
    """Backbone -> FPN -> DB head. ``forward`` returns the probability map in eval mode, a dict in training."""

    def __init__(self, cfg: DBNetConfig) -> None:
        super().__init__()
        if len(cfg.stages) != 4:
            raise ValueError("DBNet needs four backbone stages (strides 4, 8, 16, 32)")
        self.cfg = cfg
        self.stem = _cbr(cfg.in_channels, cfg.stem, 3, 2)
        stages, cin = [], cfg.stem
        for expand, cout, blocks in cfg.stages:
            layers = [InvertedResidual(cin, cout, expand, 2)]
            layers += [InvertedResidual(cout, cout, expand, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.ModuleList(stages)
        n, q = cfg.neck, cfg.neck // 4
        self.lateral = nn.ModuleList([nn.Conv2d(c, n, 1, bias=False) for _, c, _ in cfg.stages])
        self.smooth = nn.ModuleList([nn.Conv2d(n, q, 3, padding=1, bias=False) for _ in cfg.stages])
        self.prob_head = self._head(4 * q)
        self.thresh_head = self._head(4 * q)

    @staticmethod
    def _head(cin: int) -> nn.Sequential:
        """3x3 conv, then two 2x transposed convs back to the input resolution (DBNet's head)."""
        mid = max(cin // 4, 4)
        return nn.Sequential(
            _cbr(cin, mid, 3),
            nn.ConvTranspose2d(mid, mid, 2, 2, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(mid, 1, 2, 2),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The FPN's fused stride-4 feature map."""
        feats = []
        y = self.stem(x)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        lat = [conv(f) for conv, f in zip(self.lateral, feats, strict=True)]
        for i in range(3, 0, -1):  # top-down: coarser levels added into finer ones
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
        outs = [conv(p) for conv, p in zip(self.smooth, lat, strict=True)]
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [F.interpolate(o, size=size, mode="nearest") for o in outs[1:]]
        return torch.cat(outs[::-1], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Eval: ``(N, 1, H, W)`` text probability. Training: logits and maps for :func:`db_loss`."""
        f = self.features(x)
        prob_logit = self.prob_head(f)
        if not self.training:
            return torch.sigmoid(prob_logit)
        prob = torch.sigmoid(prob_logit)
        thresh = torch.sigmoid(self.thresh_head(f))
        binary = torch.sigmoid(self.cfg.k * (prob - thresh))
        return {"prob_logit": prob_logit, "prob": prob, "thresh": thresh, "binary": binary}


def create_dbnet(name: str, **overrides: object) -> DBNet:
    """An untrained detector of a registered architecture.

    >>> create_dbnet("dbnet_tiny").cfg.neck
    16
    """
    if name not in DBNET_MODELS:
        raise KeyError(f"unknown detector model {name!r}; available: {', '.join(sorted(DBNET_MODELS))}")
    base = DBNET_MODELS[name].to_dict()
    return DBNet(DBNetConfig.from_dict({**base, **overrides}))


def ohem_bce(logit: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, ratio: float = 3.0) -> torch.Tensor:
    """BCE over all positive pixels and the ``ratio`` times as many hardest negatives (per batch)."""
    loss = F.binary_cross_entropy_with_logits(logit, gt, reduction="none")
    pos = (gt * mask) > 0.5
    neg = ((1 - gt) * mask) > 0.5
    n_pos = int(pos.sum())
    n_neg = min(int(neg.sum()), int(n_pos * ratio)) if n_pos else min(int(neg.sum()), 100)
    neg_loss = loss[neg]
    if n_neg < neg_loss.numel():
        neg_loss = torch.topk(neg_loss, n_neg).values
    return (loss[pos].sum() + neg_loss.sum()) / max(n_pos + n_neg, 1)


def dice_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``1 - 2|P.G| / (|P| + |G|)`` inside the mask."""
    inter = (pred * gt * mask).sum()
    return 1 - 2 * inter / ((pred * mask).sum() + (gt * mask).sum() + eps)


def masked_l1(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the mask (the border zone of the threshold map)."""
    return (torch.abs(pred - gt) * mask).sum() / (mask.sum() + 1e-6)


def db_loss(out: dict[str, torch.Tensor], prob: torch.Tensor, prob_mask: torch.Tensor, thresh: torch.Tensor,
            thresh_mask: torch.Tensor, weights: tuple[float, float, float] = (1.0, 10.0, 1.0),
            ) -> tuple[torch.Tensor, dict[str, float]]:
    """DBNet loss from the training outputs and the ``(N, 1, H, W)`` targets of :func:`db_targets`.

    Returns the total and its parts (probability BCE, threshold L1, binary dice) as floats for logging.
    """
    lp = ohem_bce(out["prob_logit"].float(), prob, prob_mask)
    lt = masked_l1(out["thresh"].float(), thresh, thresh_mask)
    lb = dice_loss(out["binary"].float(), prob, prob_mask)
    total = weights[0] * lp + weights[1] * lt + weights[2] * lb
    return total, {"bce": float(lp.detach()), "l1": float(lt.detach()), "dice": float(lb.detach())}
