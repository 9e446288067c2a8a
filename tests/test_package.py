"""The package holds the library only, and its modules import one another without a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fmnist_core
from fmnist_core import __main__ as cli

PACKAGE = Path(fmnist_core.__file__).resolve().parent


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module under `package` (a package's name is its __init__.py)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = (package.name, *path.relative_to(package).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    """module -> {module of the same package it imports: line}, deferred imports (inside functions,
    under `if TYPE_CHECKING`) included: any import statement anywhere in the file counts."""
    modules = module_names(package)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[:len(here) - (node.level - 1)]
                    base = ".".join(here + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:        # `import pkg.mod.attr` -> pkg.mod
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected group of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:                 # walk inside the group from its first module back to it
        path, seen = [group[0]], {group[0]}
        while True:
            nxt = next(w for w in sorted(graph[path[-1]]) if w in group and (w == group[0] or w not in seen))
            path.append(nxt)
            if nxt == group[0]:
                break
            seen.add(nxt)
        cycles.append(path)
    return cycles


@pytest.mark.parametrize("package", ["fmnist_core", "fmnist_app"])
def test_no_import_cycle_in_the_package_deferred_imports_included(package):
    graph = import_graph(PACKAGE.parent / package)
    assert len(graph) > 3 and all(name.startswith(package) for name in graph)
    if package == "fmnist_core":
        assert "fmnist_core.spec" in graph["fmnist_core.models"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(
        " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(c, c[1:])) + f" -> {c[-1]}" for c in cycles)


def test_the_cycle_check_sees_deferred_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import x\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from ..a import y\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    graph = import_graph(pkg)
    assert graph["pkg.d"] == {"pkg.a": 1} and graph["pkg.b"] == {"pkg.sub.c": 2}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    (pkg / "sub" / "c.py").write_text("import os.path\nfrom pkg import sub\n")
    graph = import_graph(pkg)
    assert graph["pkg.sub.c"] == {"pkg.sub": 2} and find_cycles(graph) == []


def test_the_package_holds_no_benchmark_and_never_imports_streamlit():
    graph = import_graph(PACKAGE)
    assert "fmnist_core.bench" not in graph
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for n in names:
                assert n.split(".")[0] not in ("streamlit", "benchmarks"), f"{path.name}: {n}"


def test_bench_without_the_repositorys_benchmarks_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "REPOSITORY", tmp_path)
    assert cli.main(["bench", "--batches", "1", "--no-reference"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: bench needs the repository's benchmarks/harness.py")


def test_bench_finds_the_harness_of_this_clone():
    harness = cli.benchmark_harness()
    assert Path(harness.__file__).resolve() == PACKAGE.parent / "benchmarks" / "harness.py"
    assert callable(harness.run_benchmark)


ROOT = PACKAGE.parent


def test_the_fmnist_console_script_is_the_module_entry():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["scripts"]["fmnist"]
    module, _, function = target.partition(":")
    assert (module, function) == ("fmnist_core.__main__", "main")
    assert getattr(cli, function) is cli.main
    # `python -m fmnist_core` runs the same function
    assert "sys.exit(main())" in (PACKAGE / "__main__.py").read_text().split('if __name__ == "__main__":')[1]
    # dependencies: the pinned set, read from requirements.txt; the package is the library only
    assert "dependencies" in project["project"]["dynamic"] and "dependencies" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["fmnist_core*"]
    assert "kernels.c" in project["tool"]["setuptools"]["package-data"]["fmnist_core"]


def test_the_test_command_lints_with_the_pinned_ruff_before_the_tests():
    readme = (ROOT / "README.md").read_text()
    assert "    bash scripts/test.sh\n" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("\nbash scripts/test.sh")
    lines = [ln for ln in (ROOT / "scripts" / "test.sh").read_text().splitlines() if ln and not ln.startswith("#")]
    ruff = next(i for i, ln in enumerate(lines) if ln.startswith(".venv/bin/ruff check"))
    pytest_ = next(i for i, ln in enumerate(lines) if "-m pytest" in ln)
    assert lines.index("scripts/setup.sh --dev") < ruff < pytest_
    assert any(ln.startswith("ruff==") for ln in (ROOT / "requirements-dev.txt").read_text().splitlines())
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "pip install" in setup and "--no-deps" in setup and " -e ." in setup


def test_the_console_script_names_itself_in_its_usage(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["/somewhere/.venv/bin/fmnist"])
    with pytest.raises(SystemExit):
        cli.main(["runs", "--bogus"])
    assert capsys.readouterr().err.startswith("usage: fmnist [-h]")
    monkeypatch.setattr("sys.argv", ["/somewhere/fmnist_core/__main__.py"])
    with pytest.raises(SystemExit):
        cli.main(["runs", "--bogus"])
    assert capsys.readouterr().err.startswith("usage: python -m fmnist_core [-h]")
