"""The floors of the package (README "Architecture"): imports only go down, engines never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import talkinghead

ROOT = Path(talkinghead.__file__).parent
# floor of each top-level module or package; a module may import its own floor and the ones below
FLOORS = {
    "errors": 0, "utils": 0, "lru": 0, "outputs": 0, "progress": 0, "io": 0, "geometry": 0, "data": 0,
    "audio": 1, "subject": 1, "nn": 1, "metrics": 1,
    "compose": 2, "motion": 2,
    "engines": 3,
    "drive": 4,
    "prepare": 5, "synth": 5, "train": 5, "say": 5, "evaluate": 5, "serve": 5,
    "cli": 6, "demo": 6, "__main__": 6,
    "__init__": 0,  # the package root holds only __version__
}


def _imports(rel: tuple[str, ...], source: str) -> list[tuple[str, int, list[str]]]:
    """(talkinghead-relative dotted target, line, names imported from it) of every import in a module at
    ``rel`` (path parts under the package), function-level ones too."""
    package = rel[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                out.append((".".join(base + ([node.module] if node.module else [])), node.lineno, names))
            elif node.module and node.module.startswith("talkinghead."):
                out.append((node.module[len("talkinghead."):], node.lineno, names))
        elif isinstance(node, ast.Import):
            out += [(a.name[len("talkinghead."):], node.lineno, []) for a in node.names
                    if a.name.startswith("talkinghead.")]
    return out


def imports_of(rel: tuple[str, ...], source: str) -> list[tuple[str, int]]:
    """(talkinghead-relative dotted target, line) of every import in a module at ``rel``."""
    return [(target, line) for target, line, _ in _imports(rel, source)]


def module_name(rel: tuple[str, ...]) -> str:
    """The dotted name under the package of the file at ``rel`` (a package's ``__init__.py``: the package)."""
    return ".".join(rel[:-1] if rel[-1] == "__init__.py" else (*rel[:-1], rel[-1].removesuffix(".py")))


def import_graph(sources: dict[tuple[str, ...], str]) -> dict[str, set[str]]:
    """Module → the modules of the package it imports, function-level imports included. ``from pkg import
    mod`` leads to ``pkg.mod`` where that is a module, else to ``pkg``; a package's parents, which Python
    imports on the way, are not counted (every module would otherwise close a circle with its package)."""
    modules = {module_name(rel) for rel in sources}
    graph = {}
    for rel, source in sources.items():
        out = set()
        for target, _, names in _imports(rel, source):
            subs = [f"{target}.{n}".strip(".") for n in names if f"{target}.{n}".strip(".") in modules]
            out.update(subs)
            if len(subs) < len(names) or not names:
                out.add(target)
        graph[module_name(rel)] = {m for m in out if m in modules} - {module_name(rel)}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of imports: the strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on.discard(group[-1])
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def violations(rel: tuple[str, ...], source: str) -> list[str]:
    src, bad = rel[0].removesuffix(".py"), []
    for target, line in imports_of(rel, source):
        dst = target.split(".")[0] if target else "__init__"
        where = "/".join(rel)
        if FLOORS[dst] > FLOORS[src]:
            bad.append(f"{where}:{line} ({src}, floor {FLOORS[src]}) imports {target} (floor {FLOORS[dst]})")
        if rel[0] == "engines" and len(rel) > 2 and target.startswith("engines."):
            if target.split(".")[1] not in (rel[1], "base", "session", "types", "modeldir"):
                bad.append(f"{where}:{line} imports another engine: {target}")
    return bad


def test_every_module_has_a_floor():
    names = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.glob("*") if p.suffix == ".py" or p.is_dir()}
    assert names - {"__pycache__"} <= set(FLOORS), names - set(FLOORS)


def test_imports_only_go_down_and_engines_stay_apart():
    bad = [v for p in ROOT.rglob("*.py") for v in violations(p.relative_to(ROOT).parts, p.read_text())]
    assert not bad, "\n".join(bad)


def test_the_checker_flags_upward_and_sideways_imports():
    rel = ("engines", "viseme", "drawing.py")
    assert violations(rel, "from ...prepare.segment import JAW\n")  # an engine importing a stage
    assert violations(rel, "def f():\n    from talkinghead.say.pipeline import say\n")  # even inside a function
    assert violations(rel, "from ..nerf.data import stack8\n")  # another engine
    assert violations(("metrics.py",), "from .evaluate import report\n")  # a floor-1 module reaching up
    assert not violations(rel, "from ...geometry.face import JAW\nfrom ..base import Drive\nfrom .data import x\n")


def test_no_import_circles_even_within_one_floor():
    sources = {p.relative_to(ROOT).parts: p.read_text() for p in ROOT.rglob("*.py")}
    cycles = import_cycles(import_graph(sources))
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_finds_circles_through_functions_and_packages():
    # a function-level import closing a circle
    assert import_cycles(import_graph({("engines", "base.py"): "def f():\n    from .session import S\n",
                                       ("engines", "session.py"): "from .base import Drive\n"}))
    # a module importing its own package's __init__, which imports it
    assert import_cycles(import_graph({("engines", "__init__.py"): "from .base import Engine\n",
                                       ("engines", "base.py"): "def f():\n    from . import ENGINES\n"}))
    # a submodule named in ``from pkg import mod``
    assert import_cycles(import_graph({("drive", "__init__.py"): "from .build import x\n",
                                       ("drive", "build.py"): "from ..drive import stream\n",
                                       ("drive", "stream.py"): "from .build import x\n"}))
    # importing a package's module does not count as importing the package's __init__
    assert not import_cycles(import_graph({("engines", "__init__.py"): "from .base import Engine\n",
                                           ("engines", "base.py"): "from .types import Drive\n",
                                           ("engines", "types.py"): "import numpy\n"}))
