"""Writing synthetic sets: files and LMDB, resumable, identical to the online stream; the bench runs."""

from __future__ import annotations

import numpy as np
import pytest

from crnn_ocr.charset import default_charset
from crnn_ocr.data.labels import open_dataset
from crnn_ocr.synth import SynthConfig, SynthStream
from crnn_ocr.synth.generate import bench, generate


@pytest.fixture(scope="module")
def cfg() -> SynthConfig:
    return SynthConfig.load(None).with_overrides(max_chars=12)


@pytest.mark.parametrize(("fmt", "workers"), [("files", 2), ("lmdb", 1)])
def test_generate_resumes_and_matches_the_stream(tmp_path, cfg, fmt, workers):
    out = tmp_path / fmt
    cs = default_charset()
    assert generate(out, 6, cfg, cs, seed=9, fmt=fmt, workers=workers) == 6
    seen: list[int] = []
    assert generate(out, 8, cfg, cs, seed=9, fmt=fmt, progress=seen.append) == 2
    assert sum(seen) == 8
    ds = open_dataset(out)
    assert len(ds) == 8
    stream = SynthStream(cfg, charset=cs, seed=9)
    for i in (0, 5, 7):
        img, text = stream[i]
        got, label = ds[i]
        assert label == text and np.array_equal(got, img)
    with pytest.raises(ValueError, match="another seed"):
        generate(out, 8, cfg, cs, seed=10, fmt=fmt)


def test_bench_reports_speed(cfg):
    r = bench(cfg, default_charset(), lines=20, warmup=2, prepare=False)
    assert r["lines_per_s_cpu"] > 0 and r["missing_chars"] == ""


def test_synth_command_writes_and_previews(tmp_path):
    from typer.testing import CliRunner

    from crnn_ocr.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["synth", "--count", "5", "--out", str(tmp_path / "set"), "--seed", "2",
                              "--format", "lmdb"])
    assert res.exit_code == 0, res.output
    assert len(open_dataset(tmp_path / "set")) == 5
    res = runner.invoke(app, ["synth", "--preview", str(tmp_path / "sheet.png"), "--count", "4"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sheet.png").stat().st_size > 1000
    assert runner.invoke(app, ["synth", "--count", "2"]).exit_code == 2
