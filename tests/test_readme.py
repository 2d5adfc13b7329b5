"""Every command and Python snippet of README.md, run in a fresh virtual environment (issue 14:
"the first hour").

What this covers, honestly:

* :func:`fresh_venv` (one per run of this file): a new virtual environment with
  ``pip install -e .`` of this checkout (the machine's pip cache and index), as the README's
  first line does; what it holds is recorded right after that base install.
* ``test_readme_quick_start_in_a_fresh_venv``: the README's first command, ``deepcuts demo``,
  in that environment in under a minute; the base install must not pull pyarrow, matplotlib,
  psycopg or playwright.
* ``test_readme_snippets_and_commands``: the same environment with the extras the README names
  for its commands (``serve``; ``plot`` for ``evaluate --plot``) installed into it, then every
  ```python block, in order and in one interpreter (later blocks use earlier names), and every
  ``deepcuts`` command the table below marks "run", with the environment's ``python`` and
  ``deepcuts``, in a scratch folder; ``deepcuts serve`` is started, polled until ``/health``
  says ready, and stopped. Input files the README assumes (``listens.tsv``, ``plays.csv``)
  are written first.
* Not run, each for the reason in :data:`NOT_RUN`: the test-suite command (it is this suite),
  extra installs, audio feature extraction (needs audio files), Spark (needs Java), the
  multi-worker and model-file serve variants. A README line this file does not classify fails
  the test, so new commands cannot slip by.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED = ROOT.parent / "shared"

pytestmark = pytest.mark.slow

#: README shell lines not run here, and why
NOT_RUN = {
    'python3 -m pip install -e ".[dev,audio,serve]" && python3 -m pytest -q': "this test suite",
    'pip install -e ".[audio]"': "an extra install (librosa); the audio tests cover it",
    'pip install -e ".[serve]"': "an extra install; the serving tests cover it",
    'pip install -e ".[spark]"': "an extra install (pyspark)",
    'pip install -e ".[tune]"': "an extra install (optuna, in the dev extra)",
    "deepcuts tune --data lastfm2k --budget 10m --output best --plot trials.png": "a 10-minute "
    "search; tests/test_tune.py runs the command with a small budget",
    "deepcuts features ~/Music -o features.csv --jobs 2": "needs a folder of audio files",
    "deepcuts serve --workers 2": "several processes; tests/test_serving_workers.py",
    "deepcuts serve --model-file models/als": "needs a saved model at models/als; "
    "tests/test_cli_serve.py::test_serving_a_model_trained_elsewhere",
    "deepcuts spark-train --input listens.tsv --format lastfm1k --out lfm1k-als "
    "--master local[2] --recommend-out recs.parquet --rarity 0.5": "needs Spark and Java",
}
#: run in a fresh virtual environment by the first test
FRESH_VENV = "python3 -m pip install -e . && deepcuts demo"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _shell_lines() -> list[str]:
    out = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            line = re.sub(r"\s+", " ", line)
            if line and not line.startswith("#"):
                out.append(line)
    return out


def test_every_readme_shell_line_is_classified():
    for line in _shell_lines():
        assert line == FRESH_VENV or line in NOT_RUN or line.startswith("deepcuts "), line


#: packages the base install must not pull (each in its extra)
NOT_IN_BASE = ("pyarrow", "matplotlib", "psycopg", "playwright")
#: the extras the README names for the commands it runs: ``serve`` and ``plot``
EXTRAS = "serve,plot"


@dataclass
class Venv:
    python: Path
    bin: Path
    env: dict
    base_packages: list  # which of NOT_IN_BASE the base install brought

    def pip_install(self, spec: str) -> None:
        r = subprocess.run([str(self.python), "-m", "pip", "install", "-q", "-e", spec],
                           env=self.env, capture_output=True, text=True, timeout=900)  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Venv:
    """A new virtual environment with the base install of this checkout (README line 1)."""
    assert FRESH_VENV in _shell_lines()
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    v = Venv(venv / "bin" / "python", venv / "bin", env, [])
    v.pip_install(str(ROOT))
    probe = ("import importlib.util as u; "
             f"print(','.join(m for m in {NOT_IN_BASE!r} if u.find_spec(m)))")  # fmt: skip
    lean = subprocess.run([str(v.python), "-c", probe], env=env, capture_output=True, text=True)
    assert lean.returncode == 0, lean.stderr
    v.base_packages = [m for m in lean.stdout.strip().split(",") if m]
    return v


def test_readme_quick_start_in_a_fresh_venv(fresh_venv, tmp_path):
    t0 = time.perf_counter()
    demo = subprocess.run(["deepcuts", "demo"], env=fresh_venv.env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    took = time.perf_counter() - t0
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "deep cuts" in demo.stdout and "Personas:" in demo.stdout
    assert took < 60, f"deepcuts demo took {took:.0f} s"
    assert fresh_venv.base_packages == [], fresh_venv.base_packages


LISTENS_TSV = "".join(
    f"user_{u:06d}\t2009-05-0{1 + s}T1{h}:00:00Z\t\tArtist\t\ttrack {'abcd'[(u + s + h) % 4]}\n"
    for u in range(4)
    for s in range(3)
    for h in range(4)
)


def _write_inputs(work: Path) -> None:
    (work / "listens.tsv").write_text(LISTENS_TSV)
    rows = ["uid,artist,plays"] + [f"u{u},artist {(u * 7 + j) % 15},{1 + j}"
                                   for u in range(30) for j in range(4)]  # fmt: skip
    (work / "plays.csv").write_text("\n".join(rows) + "\n")


def _cli(line: str, venv: Venv) -> list[str]:
    args = shlex.split(line)
    assert args[0] == "deepcuts"
    return [str(venv.bin / "deepcuts"), *args[1:]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_until_ready(line: str, work: Path, venv: Venv, env: dict) -> None:
    """Start ``line`` (without Optuna in the environment: seed Last.fm 2K and train ALS), wait
    until ``/health`` says ready, stop it."""
    port = _free_port()
    env = dict(env, DEEPCUTS_DATA_DIR=str(work / "serve-data"))
    extra = ["--port", str(port)]
    proc = subprocess.Popen([*_cli(line, venv), *extra], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if b'"ready":true' in r.read().replace(b" ", b""):
                        return
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(f"{line} exited: {proc.stdout.read()[-2000:]}") from None
                time.sleep(0.5)
        raise AssertionError(f"{line}: not ready within 180 s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_readme_snippets_and_commands(fresh_venv, tmp_path):
    fresh_venv.pip_install(f"{ROOT}[{EXTRAS}]")
    work = tmp_path / "work"
    work.mkdir()
    _write_inputs(work)
    skipped = []
    if SHARED.exists():  # the content snippet reads ../shared/data relative to the folder
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    blocks = _blocks("python")
    script = []
    for k, block in enumerate(blocks):
        if "../shared/data" in block and not (tmp_path / "shared").exists():
            skipped.append(f"python block {k + 1}: needs ../shared/data")
            block = "pass\n"
        script.append(f"print('--- README python block {k + 1}', flush=True)\n{block}")
    env = dict(fresh_venv.env, MPLBACKEND="Agg")
    r = subprocess.run([str(fresh_venv.python), "-c", "\n".join(script)], cwd=work, env=env,
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert f"--- README python block {len(blocks)}" in r.stdout
    assert (work / "als.json").exists()  # the snippets' model, used by the commands below

    ran = []
    for line in _shell_lines():
        if line == FRESH_VENV or line in NOT_RUN:
            continue
        if line.split()[:2] == ["deepcuts", "serve"]:
            _serve_until_ready(line, work, fresh_venv, env)
        else:
            c = subprocess.run(_cli(line, fresh_venv), cwd=work, env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
            assert c.returncode == 0, f"{line}\n{c.stdout[-1500:]}\n{c.stderr[-1500:]}"
        ran.append(line)
    assert (work / "depth.png").exists()
    assert len(ran) >= 8, ran
    print(f"ran {len(ran)} commands and {len(blocks)} python blocks; skipped: {skipped}")
