"""The layout's rules: the import graph, module sizes, and the installed package.

* No import cycles between modules (function-level imports included) nor
  between packages (``transforms.dataset``, ``transforms.merge``, ...,
  ``model_runner``, ``pipelines``).
* Library code never imports ``pipelines``; no entry point imports another.
* The flows (merge, inference, evaluation, training, mapping) import only
  the shared ground floor (``transforms.dataset``, ``transforms.runtime``;
  the merge also ``transforms.insitu``, the ISMN side a map's validation
  will share), never each other.
* No module over 400 lines, no entry point over 150.
* Every function and class of a flow's public surface (its ``__all__``) has
  a docstring naming each of its parameters (fields, for dataclasses and
  NamedTuples; a base class's docstring counts for the fields it declares).
* The wheel built from ``setup.py``, installed outside the repository as a
  Dataflow worker installs it, holds every module of the three packages and
  imports each one from there.
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("pipelines", "transforms", "model_runner")
MAX_LINES = 400


def modules():
    """Dotted module name -> file path, for every module of the three packages."""
    out = {}
    for package in PACKAGES:
        for folder, _, names in os.walk(os.path.join(ROOT, package)):
            for name in names:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3]
                    dotted = rel.replace(os.sep, ".")
                    out[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = \
                        os.path.join(folder, name)
    return out


def imports_of(path, module, known):
    """The project modules ``module`` imports, anywhere in its file."""
    tree = ast.parse(open(path).read())
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def graph():
    known = modules()
    return {m: imports_of(p, m, known) for m, p in known.items()}


def find_cycle(edges):
    """One cycle of the directed graph as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def package_of(module):
    """``transforms.merge.rules`` -> ``transforms.merge``; ``model_runner.model`` -> ``model_runner``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "transforms" and len(parts) > 1 else parts[0]


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_modules():
    # a package's __init__ re-exports its modules; those never import it back
    assert find_cycle(graph()) is None


def test_no_import_cycle_between_packages():
    edges = {}
    for module, imported in graph().items():
        for other in imported:
            if package_of(other) != package_of(module):
                edges.setdefault(package_of(module), set()).add(package_of(other))
    assert find_cycle(edges) is None, edges


#: what each package may import besides itself: the flows stand on the dataset
#: package and the runtime (how a command runs: settings, runner, errors) and
#: never import each other
ALLOWED = {
    "transforms.dataset": set(),
    "transforms.runtime": {"transforms.dataset"},
    "transforms.insitu": set(),
    "transforms.merge": {"transforms.dataset", "transforms.runtime", "transforms.insitu"},
    "transforms.inference": {"transforms.dataset", "transforms.runtime", "model_runner"},
    "transforms.evaluation": {"transforms.dataset", "transforms.runtime"},
    "transforms.training": {"transforms.dataset", "transforms.runtime"},
    "transforms.mapping": {"transforms.dataset", "transforms.runtime", "model_runner"},
    "transforms.validation": {"transforms.dataset", "transforms.runtime", "transforms.insitu"},
    "transforms.synthetic": {"transforms.dataset"},
    "model_runner": {"transforms.dataset", "transforms.runtime"},
}


def test_flows_stand_on_the_dataset_package_and_not_on_each_other():
    used = {}
    for module, imported in graph().items():
        for other in imported:
            if package_of(other) != package_of(module) and package_of(module) != "transforms":
                used.setdefault(package_of(module), set()).add(package_of(other))
    assert set(used) - {"pipelines"} <= set(ALLOWED)
    for package, others in used.items():
        if package != "pipelines":
            assert others <= ALLOWED[package], (package, others - ALLOWED[package])


def test_library_never_imports_an_entry_point_and_entry_points_not_each_other():
    for module, imported in graph().items():
        entry_points = {m for m in imported if m.startswith("pipelines")}
        if module.startswith("pipelines"):
            assert not entry_points - {"pipelines"}, (module, entry_points)
        else:
            assert not entry_points, (module, entry_points)


MAX_ENTRY_POINT_LINES = 150


def test_entry_points_are_thin():
    """An entry point parses flags into one settings object, calls its flow and prints."""
    long = {m: n for m, p in modules().items() if m.startswith("pipelines.")
            and (n := len(open(p).read().splitlines())) > MAX_ENTRY_POINT_LINES}
    assert not long


FLOW_PACKAGES = ("transforms.merge", "transforms.inference", "transforms.evaluation",
                 "transforms.training", "transforms.mapping")


def undocumented_parameters(obj):
    """The parameters (or fields) of a public function or class its
    docstrings do not name; ``["<no docstring>"]`` when it has none."""
    import inspect
    import re

    doc = inspect.getdoc(obj) or ""
    if not doc:
        return ["<no docstring>"]
    if inspect.isclass(obj):
        docs = " ".join(inspect.getdoc(c) or "" for c in obj.__mro__ if c is not object)
        if hasattr(obj, "_fields"):
            names = list(obj._fields)
        elif hasattr(obj, "__dataclass_fields__"):
            names = list(obj.__dataclass_fields__)
        elif "__init__" in vars(obj):
            names = list(inspect.signature(obj.__init__).parameters)[1:]
        else:
            names = []
    else:
        docs, names = doc, list(inspect.signature(obj).parameters)
    skip = {"self", "cls", "args", "kwargs", "unused_args", "unused_kwargs"}
    return [n for n in names if n not in skip and not re.search(rf"\b{re.escape(n)}\b", docs)]


def test_every_public_name_of_a_flow_documents_its_parameters():
    import importlib
    import inspect

    missing = {}
    for package in FLOW_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                if (gaps := undocumented_parameters(obj)):
                    missing[f"{package}.{name}"] = gaps
    assert not missing


def test_the_docstring_rule_sees_a_missing_parameter():
    def documented(a, b):
        """Args: a: one. b: two."""

    def half(a, b):
        """Args: a: one."""

    assert undocumented_parameters(documented) == [] and undocumented_parameters(half) == ["b"]
    assert undocumented_parameters(lambda: None) == ["<no docstring>"]


def test_no_module_over_400_lines():
    long = {m: n for m, p in modules().items() if (n := len(open(p).read().splitlines())) > MAX_LINES}
    assert not long


@pytest.fixture(scope="module")
def installed(project_wheel, tmp_path_factory):
    """The project's wheel (``conftest.project_wheel``) installed into a
    folder outside the repository."""
    out = tmp_path_factory.mktemp("installed")
    target = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(project_wheel)],
                   check=True, cwd=str(out))
    return target


def test_the_wheel_holds_every_module_and_each_imports_from_it(installed):
    expected = sorted(modules())
    shipped = sorted(m for m in modules_under(str(installed)))
    assert shipped == expected
    # A fresh interpreter, outside the repository, with the installed folder
    # first on its path; each module must come from there (not from the
    # checkout, which this test environment also knows as an editable install).
    script = ("import importlib, json, sys\n"
              f"sys.path.insert(0, {str(installed)!r})\n"
              "out = {}\n"
              f"for m in {expected!r}:\n"
              "    out[m] = importlib.import_module(m).__file__\n"
              "print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                          cwd=str(installed.parent), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    files = json.loads(done.stdout.strip().splitlines()[-1])
    outside = {m: f for m, f in files.items() if not f.startswith(str(installed))}
    assert not outside


def modules_under(site):
    for package in PACKAGES:
        for folder, _, names in os.walk(os.path.join(site, package)):
            for name in names:
                if name.endswith(".py"):
                    dotted = os.path.relpath(os.path.join(folder, name), site)[:-3].replace(os.sep, ".")
                    yield dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted
