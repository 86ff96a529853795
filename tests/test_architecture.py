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
    "cli": 6, "demo": 6,
    "__init__": 0,  # the package root holds only __version__
}


def imports_of(rel: tuple[str, ...], source: str) -> list[tuple[str, int]]:
    """(talkinghead-relative dotted target, line) of every import in a module at ``rel`` (path parts
    under the package), function-level ones too."""
    package = rel[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                out.append((".".join(base + ([node.module] if node.module else [])), node.lineno))
            elif node.module and node.module.startswith("talkinghead."):
                out.append((node.module[len("talkinghead."):], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name[len("talkinghead."):], node.lineno) for a in node.names if a.name.startswith("talkinghead.")]
    return out


def violations(rel: tuple[str, ...], source: str) -> list[str]:
    src, bad = rel[0].removesuffix(".py"), []
    for target, line in imports_of(rel, source):
        dst = target.split(".")[0] if target else "__init__"
        where = "/".join(rel)
        if FLOORS[dst] > FLOORS[src]:
            bad.append(f"{where}:{line} ({src}, floor {FLOORS[src]}) imports {target} (floor {FLOORS[dst]})")
        if rel[0] == "engines" and len(rel) > 2 and target.startswith("engines."):
            if target.split(".")[1] not in (rel[1], "base", "session", "modeldir"):
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
