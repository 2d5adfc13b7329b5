"""``deepcuts features`` (issue 7)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("librosa")

from deepcuts.cli import main  # noqa: E402
from deepcuts.data.features import read_feature_table  # noqa: E402

TRUMPET = Path(__file__).parent / "data" / "audio" / "sorohanro_solo_trumpet_06.ogg"


def test_features_command(tmp_path, capsys):
    folder = tmp_path / "audio"
    folder.mkdir()
    (folder / "trumpet.ogg").write_bytes(TRUMPET.read_bytes())
    (folder / "bad.ogg").write_bytes(np.random.default_rng(1).bytes(3000))
    out = tmp_path / "features.csv"
    assert main(["features", str(folder), "-o", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "1 extracted, 0 from cache" in captured.out
    assert "bad.ogg" in captured.err and "cannot decode" in captured.err
    df = pd.read_csv(out)
    assert df["file"].tolist() == ["trumpet.ogg"] and "mfcc20_std" in df
    # second run: everything from the cache
    assert main(["features", str(folder), "-o", str(out), "--quiet"]) == 0
    assert "0 extracted, 1 from cache" in capsys.readouterr().out
    table = read_feature_table(out)
    assert table.ids.tolist() == ["trumpet.ogg"] and "key" not in table.columns


def test_features_command_user_error(tmp_path, capsys):
    assert main(["features", str(tmp_path / "missing"), "-o", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err
    assert "not a folder" in err and "Traceback" not in err
