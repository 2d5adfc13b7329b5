"""The layering of ``src/deepcuts`` stays as documented (issue 14, point 14).

README.md, "Architecture": data flows one way, data -> models -> rerank -> evaluation ->
serving (with the command line on top), and lower layers never import higher ones. The
optional ``deepcuts.distributed`` uses data, models and rerank; ``deepcuts.testing`` (the
contract tests and planted data shipped for users' own tests) uses data and models. Every
import counts, at module level or inside a function: a lazy import still ties the layers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "deepcuts"
#: the base every layer may use: deepcuts/__init__.py, _fileio.py, _version.py, exceptions.py
BASE = "(base)"
#: the layers, lowest first; a package may import the ones before it (README.md, Architecture)
ORDER = [BASE, "data", "models", "rerank", "evaluation", "serving", "cli"]
#: packages beside the layers and what each may import; only the command line imports them
SIDE = {
    "distributed": {BASE, "data", "models", "rerank"},
    "testing": {BASE, "data", "models"},
}
ALLOWED = {p: set(ORDER[:k]) for k, p in enumerate(ORDER)}
ALLOWED.update(SIDE)
ALLOWED["cli"] |= {"distributed"}


def _module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, src: Path = SRC) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, names) of every ``deepcuts`` import of ``path`` (a file under ``src``):
    ``import``, ``from ... import`` (relative ones resolved) and
    ``importlib.import_module("...")`` with a literal."""
    name = _module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            out.append((node.lineno, module, tuple(a.name for a in node.names)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append((node.lineno, node.args[0].value, ()))
    return [(ln, m, n) for ln, m, n in out if m == "deepcuts" or m.startswith("deepcuts.")]


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("_fileio", "_version", "exceptions"):
        return BASE
    return parts[1]


def _sources():
    return sorted(PKG.rglob("*.py"))


def test_every_package_has_a_layer():
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED) - {BASE}, "place the new package in ORDER or SIDE"
    assert {_layer(_module_name(f)) for f in _sources()} <= set(ALLOWED)


def test_layers_import_only_lower_layers():
    bad = []
    for f in _sources():
        own = _layer(_module_name(f))
        for line, module, _ in _imports(f):
            target = _layer(module)
            if target != own and target not in ALLOWED[own]:
                bad.append(f"{f.relative_to(SRC)}:{line} ({own}) imports {module} ({target})")
    assert not bad, "a lower layer imports a higher one:\n" + "\n".join(bad)


def test_the_layer_check_sees_lazy_relative_and_dynamic_imports(tmp_path):
    """The scanner itself: a lazy import inside a function, a relative import and an
    ``importlib.import_module`` string are all found (else the test above could pass blind)."""
    pkg = tmp_path / "deepcuts" / "data"
    pkg.mkdir(parents=True)
    f = pkg / "bad.py"
    f.write_text(
        "import importlib\n"
        "def f():\n"
        "    from deepcuts.serving.service import RecommenderService\n"
        "    from ..models import ALS\n"
        "    return importlib.import_module('deepcuts.evaluation')\n"
    )
    found = {(m, _layer(m)) for _, m, _ in _imports(f, tmp_path)}
    assert found == {("deepcuts.serving.service", "serving"), ("deepcuts.models", "models"),
                     ("deepcuts.evaluation", "evaluation")}  # fmt: skip
    assert not {t for _, t in found} & ALLOWED["data"]


def _graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (``from pkg import submodule`` counts
    as the submodule; the package's own ``__init__`` loaded on the way does not)."""
    files = {_module_name(f): f for f in _sources()}
    nodes = {m for m in files if m == package or m.startswith(package + ".")}
    graph: dict[str, set[str]] = {}
    for m in sorted(nodes):
        edges = set()
        for _, target, names in _imports(files[m]):
            subs = {f"{target}.{n}" for n in names} & nodes
            if subs:
                edges |= subs
            elif target in nodes and target != package:
                edges.add(target)
            elif target == package and m != package:
                edges.add(package)  # a name of the package's __init__
        graph[m] = edges - {m}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


#: imports of a package's own ``__init__`` from inside it that are allowed, and why
BACK_TO_INIT = {
    ("deepcuts.models.base", "deepcuts.models"): "load_model imports the package (lazily) so "
    "that every saveable model class has registered itself",
}


@pytest.mark.parametrize(
    "package", ["deepcuts.serving", "deepcuts.data", "deepcuts.models", "deepcuts"]
)
def test_modules_import_each_other_without_cycles(package):
    graph = _graph(package)
    for (a, b), _why in BACK_TO_INIT.items():
        graph.get(a, set()).discard(b)
    if package == "deepcuts.serving":
        # the split of service.py (issue 14): the public face and its private parts
        parts = {"_handle", "_history", "_recommend", "_labels", "_explain", "_jobs", "_errors"}
        assert {f"{package}.{p}" for p in parts} <= graph["deepcuts.serving.service"]
        for p in parts:  # the parts never reach back up to the face, nor into the HTTP layer
            assert not graph[f"{package}.{p}"] & {f"{package}.service", f"{package}.app"}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _service_names_used() -> set[str]:
    """Names that src, tests, benchmarks and docs take from ``deepcuts.serving.service``:
    ``from deepcuts.serving.service import X`` and ``mod.X`` on a name bound to the module
    (``import ... as mod``, ``mod = pytest.importorskip("deepcuts.serving.service")``)."""
    root = SRC.parent
    target = "deepcuts.serving.service"
    used: set[str] = set()
    sources = [p for d in ("src", "tests", "benchmarks") for p in (root / d).rglob("*.py")]
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == target:
                used |= {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                aliases |= {a.asname for a in node.names if a.name == target and a.asname}
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and node.value.args
                and isinstance(node.value.args[0], ast.Constant)
                and node.value.args[0].value == target
            ):
                aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                used.add(node.attr)
    for md in [root / "README.md", *(root / "docs").glob("*.md")]:
        for names in re.findall(
            r"from deepcuts\.serving\.service import ([\w, ]+)", md.read_text()
        ):
            used |= {n.strip() for n in names.split(",") if n.strip()}
    return used


def test_service_still_exports_what_callers_import():
    pytest.importorskip("sqlalchemy")
    import deepcuts.serving.service as service

    used = _service_names_used()
    # the scan finds the imports it must (else it would pass blind)
    assert {"RecommenderService", "RECOMMEND_DEFAULTS", "ConflictError", "RetrainBusyError",
            "ModelHandle", "_rerankers"} <= used  # fmt: skip
    missing = sorted(n for n in used | set(service.__all__) if not hasattr(service, n))
    assert not missing, f"deepcuts.serving.service no longer exports {missing}"
    # the public face keeps its documented members, wherever their code lives
    for method in ("start", "recommend", "recommend_batch", "personas", "similar", "explain",
                   "retrain", "cancel", "job", "wait", "add_listens", "import_history",
                   "import_model", "health", "curve", "users", "sync", "needs_store"):  # fmt: skip
        assert callable(getattr(service.RecommenderService, method)), method
    assert service.RecommenderService.__module__ == "deepcuts.serving.service"
    assert set(service.RECOMMEND_DEFAULTS) == {"n", "exclude_played", "rarity", "band",
                                               "diversity", "persona", "depth", "floor", "taste"}  # fmt: skip
