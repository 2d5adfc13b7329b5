"""``deepcuts db`` and ``deepcuts serve`` command line."""

from __future__ import annotations

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("fastapi")

from deepcuts.cli import main


def test_db_upgrade_and_current(tmp_path, capsys):
    assert main(["db", "current", "--data-dir", str(tmp_path)]) == 0
    assert "none (run upgrade)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    assert "revision 0001" in capsys.readouterr().out
    assert (tmp_path / "deepcuts.sqlite3").exists()
    assert main(["db", "current", "--db", f"sqlite:///{tmp_path / 'deepcuts.sqlite3'}"]) == 0
    assert "revision 0001" in capsys.readouterr().out


def test_serve_errors_are_one_line(tmp_path, capsys):
    assert main(["serve", "--data-dir", str(tmp_path), "--model", "nonsense"]) == 2
    assert "unknown model 'nonsense'" in capsys.readouterr().err
    assert main(["serve", "--data-dir", str(tmp_path), "--no-seed"]) == 2
    err = capsys.readouterr().err
    assert "no plays" in err and "Traceback" not in err
    assert main(["serve", "--db", "mysql://u@h/db"]) == 2
    assert "not supported" in capsys.readouterr().err
