"""The package structure holds: no import cycles (lazy imports inside functions included), no
module reaching into another's private names, modules of a readable size, and Lightning's
internals touched in one module only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = {
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
    for p in sorted(SRC.glob("**/*.py"))
    if "egg-info" not in str(p)
}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import statement, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(name, set())
        for module, names in _imports(path):
            for target in [module, *(f"{module}.{n}" for n in names)]:
                if target in MODULES and target != name:
                    edges.add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_another_modules_private_names():
    private = [
        f"{name}: from {module} import {n}"
        for name, path in MODULES.items()
        for module, names in _imports(path)
        if module.startswith(("mnistx", "hydra_plugins.mnistx"))
        for n in names
        if n.startswith("_") and n != "__version__"
    ]
    assert private == []


def test_modules_stay_readable():
    """At most ~250 lines each (300 with the docstrings a module opens with)."""
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: lines for n, lines in long.items() if lines > 300} == {}


def test_lightning_internals_are_touched_in_one_module():
    """Private attributes of Lightning's objects (`_trainer`, `_every_n_train_steps`,
    `_current_fx_name`, ...) appear only in mnistx.training.lightning_patches."""
    names = {"_trainer", "_current_fx_name", "_every_n_train_steps", "_train_time_interval"}
    names |= {"_duration"}
    users = sorted(
        name
        for name, path in MODULES.items()
        if name != "mnistx.training.lightning_patches"
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Attribute) and node.attr in names)
        or (isinstance(node, ast.Constant) and node.value in names)
    )
    assert users == []


def test_cfg_job_needs_no_torch(tmp_path):
    """`--cfg job` (and --help) answer without importing torch or Lightning (~2 s here)."""
    code = (
        "import sys\n"
        "sys.argv = ['mnistx.train', '--cfg', 'job', 'model=cnn']\n"
        "from mnistx.train import cli\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'torchvision') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "_target_: mnistx.models.networks.CNN" in proc.stdout
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.*"))


@pytest.mark.parametrize("package", ["config", "data", "models", "training", "runs", "sweeps"])
def test_each_package_says_what_it_owns(package):
    doc = ast.get_docstring(ast.parse((SRC / "mnistx" / package / "__init__.py").read_text()))
    assert doc and len(doc) > 40
