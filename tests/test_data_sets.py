"""Labelled line sets: labels.tsv folders and LMDB round-trip through the dataset readers."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from crnn_ocr.data.labels import LabelsTsvDataset, open_dataset, read_labels_tsv
from crnn_ocr.data.lmdb_set import LmdbDataset, LmdbWriter


def lines(n: int = 5) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(0)
    texts = ["发票号码 No.123", "合计¥1,234.00", "TOTAL 7.10", "（见下图）：", "a"]
    return [(rng.integers(0, 256, (32, 40 + 10 * k), dtype=np.uint8), texts[k % len(texts)]) for k in range(n)]


def test_labels_tsv_round_trip(tmp_path):
    rows = []
    for k, (img, text) in enumerate(lines()):
        cv2.imwrite(str(tmp_path / f"{k}.png"), img)
        rows.append(f"{k}.png\t{text}\n")
    (tmp_path / "labels.tsv").write_text("".join(rows), encoding="utf-8")
    ds = open_dataset(tmp_path)
    assert isinstance(ds, LabelsTsvDataset) and len(ds) == 5
    for k, (img, text) in enumerate(lines()):
        got, label = ds[k]
        assert label == text and np.array_equal(got, img)
    assert len(read_labels_tsv(tmp_path)) == 5
    assert isinstance(open_dataset(tmp_path / "labels.tsv"), LabelsTsvDataset)


def test_lmdb_round_trip_and_pickling(tmp_path):
    path = tmp_path / "set"
    with LmdbWriter(path, map_size=1 << 26, commit_every=2) as w:
        for k, (img, text) in enumerate(lines()):
            w.put(k + 1, cv2.imencode(".png", img)[1].tobytes(), text)
    ds = open_dataset(path)
    assert isinstance(ds, LmdbDataset) and len(ds) == 5
    ds = pickle.loads(pickle.dumps(ds))
    for k, (img, text) in enumerate(lines()):
        got, label = ds[k]
        assert label == text and np.array_equal(got, img)
    with pytest.raises(IndexError):
        ds[5]
    assert isinstance(open_dataset(path / "data.mdb"), LmdbDataset)


def test_lmdb_writer_resumes(tmp_path):
    path = tmp_path / "set"
    img = cv2.imencode(".png", lines(1)[0][0])[1].tobytes()
    with LmdbWriter(path, map_size=1 << 26) as w:
        w.put(1, img, "x")
    with LmdbWriter(path, map_size=1 << 26) as w:
        assert w.has(1) and not w.has(2) and w.count == 1
        w.put(2, img, "y")
    assert [open_dataset(path)[k][1] for k in range(2)] == ["x", "y"]


def test_unknown_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path)
