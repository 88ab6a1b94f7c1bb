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


# The packages from the bottom up: each imports only from layers below it (docs/design.md).
# The commands (python -m mnistx.<command>) sit on top and may use each other.
LAYERS = [
    {"errors", "compat"},
    {"config"},
    {"data", "models"},
    {"runs"},
    {"inspection", "sweeps", "hpo"},
    {"training", "app"},
    {"hydra_plugins"},
]
COMMANDS = {
    *("mnistx", "train", "train_help", "eval", "predict", "export", "compare", "serve"),
    *("fast_exit", "api"),
}


def _package(module: str) -> str:
    parts = module.split(".")
    return "hydra_plugins" if parts[0] == "hydra_plugins" else parts[min(1, len(parts) - 1)]


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    level = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    level |= dict.fromkeys(COMMANDS, len(LAYERS))
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if _package(a) != _package(b)
        and not (_package(a) in COMMANDS and _package(b) in COMMANDS)
        and level[_package(a)] <= level[_package(b)]
    )


def test_packages_import_only_from_the_layers_below():
    packages = {_package(m) for m in MODULES}
    assert packages == set().union(*LAYERS, COMMANDS)  # a new package takes its place here
    assert _layer_violations(_graph()) == []


def test_the_layer_check_sees_an_upward_import():
    graph = {"mnistx.runs.a": {"mnistx.sweeps.b"}, "mnistx.sweeps.b": {"mnistx.runs.c"}}
    assert _layer_violations(graph) == ["mnistx.runs.a -> mnistx.sweeps.b"]


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
    `_current_fx_name`, ...) appear only in mnistx.compat.lightning."""
    names = {"_trainer", "_current_fx_name", "_every_n_train_steps", "_train_time_interval"}
    names |= {"_duration"}
    users = sorted(
        name
        for name, path in MODULES.items()
        if name != "mnistx.compat.lightning"
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


@pytest.mark.parametrize(
    "package", ["compat", "config", "data", "models", "training", "runs", "sweeps"]
)
def test_each_package_says_what_it_owns(package):
    doc = ast.get_docstring(ast.parse((SRC / "mnistx" / package / "__init__.py").read_text()))
    assert doc and len(doc) > 40


# Underscored names that are documented public API of the standard library.
DOCUMENTED = {"os._exit", "_asdict", "_replace", "_fields"}


def _class_owns(cls: ast.ClassDef) -> set[str]:
    """The underscored names a class of ours defines: methods, class attributes and
    `self._x = ...` anywhere in its body."""
    owned = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            owned.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            owned.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            owned.add(node.attr)
    return owned


def _foreign_private_names(tree: ast.Module) -> list[str]:
    """Private names of other libraries a module touches: imports from `_`-modules, `._x` on
    anything but an object of a class that defines `_x` itself, `super()._x`, and
    getattr/hasattr/setattr with a `_x` string."""
    found = []
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def owner(node: ast.AST) -> set[str]:
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.ClassDef):
                return _class_owns(node)
        return set()

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__") and name not in DOCUMENTED

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                if module.startswith(("mnistx", "hydra_plugins.mnistx")) or module == "__future__":
                    continue
                if any(private(part) for part in module.split(".")):
                    found.append(f"line {node.lineno}: import {module}")
        elif isinstance(node, ast.Attribute) and private(node.attr):
            if f"{ast.unparse(node.value)}.{node.attr}" in DOCUMENTED:
                continue
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not (on_self and node.attr in owner(node)):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and private(node.args[1].value)
        ):
            on_self = isinstance(node.args[0], ast.Name) and node.args[0].id == "self"
            if not (on_self and node.args[1].value in owner(node)):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_other_libraries_private_names_are_used_in_compat_only():
    """Every private name of another library (Lightning, Hydra, OmegaConf, Optuna, torch,
    TensorBoard, submitit, uvicorn) sits in mnistx.compat, one module per library, where an
    assumption test (tests/test_compat_<library>.py) checks it."""
    users = {
        name: found
        for name, path in MODULES.items()
        if not name.startswith("mnistx.compat")
        for found in [_foreign_private_names(ast.parse(path.read_text()))]
        if found
    }
    assert users == {}


def test_the_private_name_check_sees_each_kind():
    code = (
        "from hydra._internal.x import Y\n"
        "import torch._dynamo\n"
        "class Mine(Base):\n"
        "    def __init__(self):\n"
        "        self._own = 1\n"
        "    def f(self, other):\n"
        "        self._own; self._inherited; other._x; super()._make()\n"
        "        getattr(other, '_y'); getattr(self, '_own')\n"
        "        os._exit(0)\n"
    )
    found = _foreign_private_names(ast.parse(code))
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted(
        [
            "import hydra._internal.x",
            "import torch._dynamo",
            "self._inherited",
            "other._x",
            "super()._make",
            "getattr(other, '_y')",
        ]
    )


def test_every_compat_module_has_its_assumption_tests():
    tests = Path(__file__).parent
    modules = sorted(p.stem for p in (SRC / "mnistx" / "compat").glob("[!_]*.py"))
    assert modules and all((tests / f"test_compat_{m}.py").is_file() for m in modules), modules


STRICT = (
    *("mnistx.runs.", "mnistx.config.", "mnistx.train", "mnistx.eval", "mnistx.predict"),
    *("mnistx.export", "mnistx.api"),
)


def test_hydras_config_is_never_a_bare_any_where_a_runs_life_is_decided():
    """mypy checks these modules strictly (pyproject.toml); a config or HydraConfig parameter
    typed Any would slip past it."""
    loose = sorted(
        f"{name}: {fn.name}({arg.arg})"
        for name, path in MODULES.items()
        if name.startswith(STRICT) and not name.startswith("mnistx.training")
        for fn in ast.walk(ast.parse(path.read_text()))
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for arg in fn.args.args + fn.args.kwonlyargs
        if arg.arg in ("cfg", "config", "hc", "own")
        and arg.annotation is not None
        and ast.unparse(arg.annotation) == "Any"
    )
    assert loose == []


def test_only_the_commands_end_the_process():
    """No sys.exit / SystemExit / os._exit in mnistx's packages: they return plans and raise
    UserError, and the command line decides (hydra_plugins, called by Hydra, and a module's
    `if __name__ == "__main__":` block are the commands' side)."""
    found = []
    for name, path in MODULES.items():
        if not name.startswith("mnistx.") or name.count(".") < 2 or name == "mnistx.fast_exit":
            continue
        tree = ast.parse(path.read_text())
        main_blocks = {
            id(n)
            for top in tree.body
            if isinstance(top, ast.If) and "__main__" in ast.unparse(top.test)
            for n in ast.walk(top)
        }
        for node in ast.walk(tree):
            if id(node) in main_blocks:
                continue
            text = ast.unparse(node) if isinstance(node, ast.Call | ast.Raise) else ""
            raises = isinstance(node, ast.Raise) and "SystemExit" in text
            exits = isinstance(node, ast.Call) and text.startswith(("sys.exit(", "os._exit("))
            if raises or exits:
                found.append(f"{name}: {text}")
    assert found == []
