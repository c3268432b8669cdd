"""CRNN: a VGG-style CNN whose feature-map columns feed a bidirectional LSTM, trained with CTC.

The CNN reduces the 32-px height to 1 and the width by ``width_stride`` (4 or 8), so a line of width ``W``
gives ``T = W / width_stride`` frames; each frame is classified over the charset plus the blank. The model
returns raw logits ``(N, T, C)``; softmax is applied at export and in the loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class CRNNConfig:
    """Architecture of a CRNN; stored in every checkpoint.

    Args:
        channels: output channels of the conv stages; each stage is ``convs_per_stage[i]`` 3x3 convs.
        pools: per stage, the (height, width) max-pool after it; the product of width pools is the stride.
        rnn_hidden: hidden size per direction of the BiLSTM.
        rnn_layers: stacked BiLSTM layers.
        dropout: dropout before the classifier (and between LSTM layers).
        height: input height.
        stem_stride: the first conv strides by 2 in both directions instead of pooling after it; saves
            most of the memory traffic at full resolution, where the CPU spends its time.
        proj: if > 0, a linear bottleneck of this size between the BiLSTM and the classifier; the
            classifier over ~7,000 characters at every frame dominates training cost, so this pays.
    """

    channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
    convs_per_stage: tuple[int, ...] = (1, 1, 1, 1, 1, 1)
    pools: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (1, 1), (2, 1), (1, 1), (2, 1))
    rnn_hidden: int = 256
    rnn_layers: int = 2
    dropout: float = 0.1
    height: int = 32
    stem_stride: bool = False
    proj: int = 0
    num_classes: int = field(default=0)

    @property
    def width_stride(self) -> int:
        """Input pixels per output frame."""
        s = 1
        for _, pw in self.pools:
            s *= pw
        return s

    def to_dict(self) -> dict:
        """Plain dict for checkpoints (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CRNNConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        d["convs_per_stage"] = tuple(d["convs_per_stage"])
        d["pools"] = tuple(tuple(p) for p in d["pools"])
        return cls(**d)


def _conv_bn(cin: int, cout: int, stride: int | tuple[int, int] = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """CNN -> height collapse -> BiLSTM -> linear over ``num_classes`` (blank at index 0)."""

    def __init__(self, cfg: CRNNConfig) -> None:
        super().__init__()
        if cfg.num_classes < 2:
            raise ValueError("num_classes must count the charset plus the blank")
        self.cfg = cfg
        layers: list[nn.Module] = []
        cin, h = 1, cfg.height
        for i, (cout, n, (ph, pw)) in enumerate(zip(cfg.channels, cfg.convs_per_stage, cfg.pools, strict=True)):
            strided = i == 0 and cfg.stem_stride
            for j in range(n):
                layers += _conv_bn(cin, cout, stride=(ph, pw) if strided and j == 0 else 1)
                cin = cout
            if (ph > 1 or pw > 1) and not strided:
                layers.append(nn.MaxPool2d((ph, pw), (ph, pw)))
            h //= ph
        # Collapse the remaining height with one conv spanning it: keeps vertical layout information that
        # averaging would blur (ascenders, descenders, punctuation position).
        layers += [nn.Conv2d(cin, cin, (h, 1), bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.cnn = nn.Sequential(*layers)
        self.rnn = nn.LSTM(cin, cfg.rnn_hidden, num_layers=cfg.rnn_layers, bidirectional=True,
                           batch_first=True, dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        feat = 2 * cfg.rnn_hidden
        self.proj = nn.Linear(feat, cfg.proj) if cfg.proj > 0 else nn.Identity()
        self.head = nn.Linear(cfg.proj or feat, cfg.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He init for convs, orthogonal recurrent weights, small head with a blank-favouring bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for name, p in self.rnn.named_parameters():
            if "weight_hh" in name:
                for i in range(4):
                    nn.init.orthogonal_(p.data[i * self.cfg.rnn_hidden:(i + 1) * self.cfg.rnn_hidden])
            elif "bias" in name:
                nn.init.zeros_(p)
                p.data[self.cfg.rnn_hidden:2 * self.cfg.rnn_hidden] = 1.0  # forget gate
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 1, H, W)`` -> logits ``(N, W / width_stride, num_classes)``.

        ``classes`` (training only) limits the classifier to those rows, in that order: with ~7,000
        characters the full classifier is a large share of a training step (see ``sampled_classes``).
        """
        f = self.cnn(x)  # (N, C, 1, T)
        f = f.squeeze(2).transpose(1, 2)  # (N, T, C)
        f, _ = self.rnn(f)
        f = self.proj(self.dropout(f))
        if classes is None:
            return self.head(f)
        return F.linear(f, self.head.weight.index_select(0, classes), self.head.bias.index_select(0, classes))

    def frames(self, width: int) -> int:
        """Output frames for an input of ``width`` pixels."""
        return width // self.cfg.width_stride
