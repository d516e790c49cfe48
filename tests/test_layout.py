"""The package's layout keeps its promises: no import cycle, test support the product never loads,
and the views' colours owned by the views.

The import graph is read from the source with ``ast``: every ``import`` a module names, at module
level or inside a function (a lazy import that closes a circle is still a circle), except under
``if TYPE_CHECKING``. A package's ``__init__`` re-exporting its own submodules is the facade
pattern, not a cycle, so importing ``a.b`` counts as an edge to ``a.b`` only, not to ``a``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nexusleads_lab"
TESTING = "nexusleads_lab.testing"


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            here = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                here = here.rpartition(".")[0]
            base = f"{here}.{base}" if base else here
        # "from pkg import sub" names the submodule when there is one
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES:  # "import pkg.mod.attr" -> the nearest module
            name = name.rpartition(".")[0]
        if name and name != module:
            out.append(name)
    return out


def _imports(module: str) -> set[str]:
    path, is_package = MODULES[module]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.update(_targets(module, is_package, child))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := walk(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := walk(module)):
            return found
    return None


def test_the_graph_reads_real_imports():
    # Guards the checks below against a parser that silently finds nothing.
    assert "nexusleads_lab.replay.cassette" in GRAPH["nexusleads_lab.replay.server"]
    assert "nexusleads_lab.replay.server" in GRAPH["nexusleads_lab.testing.modelserver"]
    assert "nexusleads_lab.replay.server" in GRAPH["nexusleads_lab.agent.provider"]  # a lazy import
    assert _a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_of_the_package_imports_itself_in_a_circle():
    cycle = _a_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_product_never_imports_the_test_support():
    product = {m: deps for m, deps in GRAPH.items() if not m.startswith(TESTING)}
    offenders = sorted(m for m, deps in product.items() if any(d.startswith(TESTING) for d in deps))
    assert offenders == []


def test_the_product_entry_points_load_without_the_test_support():
    code = (
        "import sys\n"
        "import nexusleads_lab, nexusleads_lab.magic, nexusleads_lab.cli, nexusleads_lab.agent.assistant\n"
        "import nexusleads_lab.agent.provider, nexusleads_lab.replay, nexusleads_lab.ui.render\n"
        "print(sorted(m for m in sys.modules if m.startswith('nexusleads_lab.testing')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_the_views_own_the_colours():
    # The palette is a leaf; the agent reaches into the views for nothing but it (pills get their colour
    # when a response is resolved), and no view imports the agent's responses for a display constant.
    assert GRAPH["nexusleads_lab.ui.palette"] == set()
    agent_to_ui = {
        dep
        for m, deps in GRAPH.items()
        if m.startswith("nexusleads_lab.agent")
        for dep in deps
        if dep.startswith("nexusleads_lab.ui")
    }
    assert agent_to_ui <= {"nexusleads_lab.ui.palette"}
    from nexusleads_lab.agent.responses import KNOWN_VALUE_COLORS
    from nexusleads_lab.ui.palette import KNOWN_VALUE_COLORS as owned

    assert KNOWN_VALUE_COLORS is owned


def test_the_demo_catalogue_is_data_shipped_with_the_package():
    from nexusleads_lab.db.demo import catalogue

    assert (PACKAGE / "db" / "demo" / "catalogue.json").is_file()
    assert catalogue.ORGS[0][0] == "acme-analytics"
    assert catalogue.SHOWCASE[0][0] == catalogue.INJECTION_LOGIN == "mallory-injector"
