"""deepcuts demo: the README's main job on the bundled data (issue 2), with the rarity knob (issue 5)."""

import re

from deepcuts.cli import main


def test_demo_prints_named_recommendations_and_deeper_cuts(capsys):
    assert main(["demo", "--users", "2", "1783", "-n", "8"]) == 0
    out = capsys.readouterr().out
    assert "User 2 listens to:" in out and "User 1783 listens to:" in out
    rows = re.findall(r"^\s+\d+\. (.+?) \((\d+)\)\s+(.+?) \((\d+)\)$", out, flags=re.M)
    assert len(rows) == 16  # 8 per user, both columns filled
    best = sum(int(r[1]) for r in rows)
    deep = sum(int(r[3]) for r in rows)
    assert deep < best  # the knob moved the lists toward artists with fewer listeners


def test_demo_bad_knob_is_a_one_line_error(capsys):
    assert main(["demo", "--rarity", "7"]) == 2
    err = capsys.readouterr().err
    assert "rarity" in err and "Traceback" not in err
