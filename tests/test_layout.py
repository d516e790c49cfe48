"""The package's layout keeps its promises: no import cycle, no import up the house, the environment
read only in ``config.py``, and test support the product never loads.

The import graph is read from the source with ``ast``: every ``import`` a module names, at module
level or inside a function (a lazy import that closes a circle is still a circle), except under
``if TYPE_CHECKING``. A package's ``__init__`` re-exporting its own submodules is the facade
pattern, not a cycle, so importing ``a.b`` counts as an edge to ``a.b`` only, not to ``a``.
The floors of the house are those docs/architecture.md states ("Layers"); a test checks the two agree.
"""

from __future__ import annotations

import ast
import re
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


# -- the floors of the house ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PKG = "nexusleads_lab"

#: Lowest floor first, as docs/architecture.md states them: a module imports its own floor and the
#: floors below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "config", "words", "safetext", "fastjson"),  # settings, wording, text safety, JSON
    ("db",),  # the database
    ("replay",),  # recorded model services
    ("agent",),  # the Assistant, its tools, events and the response contract (colours included)
    ("eval", "ui"),  # uses of one assistant in the kernel: scoring it, and the views
    ("server", "mcp"),  # the assistant and its views served to other processes
    ("session",),  # the kernel's session, which hands itself to the panel
    ("magic", "cli", PKG),  # entry points (the package itself: ``%load_ext``, lazy names)
    ("testing",),  # test support, never imported by the product
)


def _floor(module: str) -> int:
    top = module.split(".")[1] if module != PKG else PKG
    for number, floor in enumerate(LAYERS):
        if top in floor:
            return number
    raise LookupError(f"{module} is on no floor: add it to LAYERS here and to docs/architecture.md's Layers")


def _climbs(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} (floor {_floor(module) + 1}) imports {dep} (floor {_floor(dep) + 1})"
        for module, deps in graph.items()
        for dep in deps
        if _floor(dep) > _floor(module)
    )


def test_every_module_is_on_a_floor():
    assert sorted({_floor(module) for module in MODULES}) == list(range(len(LAYERS)))


def test_no_import_climbs_the_house():
    assert _climbs(GRAPH) == []


def test_a_climb_is_found():
    # The check above against a rule that finds nothing: an agent module importing a view is a climb.
    graph = {f"{PKG}.agent.responses.models": {f"{PKG}.ui.palette", f"{PKG}.db.errors"}}
    assert _climbs(graph) == [f"{PKG}.agent.responses.models (floor 4) imports {PKG}.ui.palette (floor 5)"]


def test_docs_state_the_same_floors():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| \d+ \|", line)]
    stated = [tuple(re.findall(r"`([\w.]+)`", row.split("|")[2])) for row in rows]
    assert stated == [tuple(name.removesuffix(".py") for name in floor) for floor in LAYERS]


def test_the_colour_contract_is_the_agents_and_the_views_draw_every_colour():
    # The names a pill may carry are the response contract's (a leaf); the views only know their hex.
    from nexusleads_lab.agent.responses import KNOWN_VALUE_COLORS, NAMED_COLORS, PALETTE
    from nexusleads_lab.ui.palette import PILL_HEX

    assert GRAPH[f"{PKG}.agent.responses.colors"] == set()
    assert GRAPH[f"{PKG}.ui.palette"] == set()
    assert set(PILL_HEX) == set(NAMED_COLORS)
    assert set(KNOWN_VALUE_COLORS.values()) <= set(NAMED_COLORS)
    assert set(PALETTE) == set(NAMED_COLORS)


# -- the environment -------------------------------------------------------------------------------

#: Modules besides config.py that may touch the environment, each with its reason. Empty: none needs to.
ENVIRONMENT_READERS: dict[str, str] = {}
ENV_CALLS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_uses(source: str) -> list[int]:
    """Lines that read or change the process environment (``os.environ``, ``os.getenv`` ..., also as
    ``from os import environ`` or through ``import os as x``)."""
    tree = ast.parse(source)
    os_names = {"os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}

    def touches(node: ast.AST) -> bool:
        if isinstance(node, ast.ImportFrom):
            return node.module == "os" and bool(ENV_CALLS & {a.name for a in node.names})
        return (
            isinstance(node, ast.Attribute)
            and node.attr in ENV_CALLS
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        )

    return sorted(node.lineno for node in ast.walk(tree) if touches(node))


def test_only_config_reads_the_environment():
    readers = {
        module: lines
        for module, (path, _) in MODULES.items()
        if module != f"{PKG}.config" and module not in ENVIRONMENT_READERS
        if (lines := _environment_uses(path.read_text(encoding="utf-8")))
    }
    assert readers == {}
    assert _environment_uses(MODULES[f"{PKG}.config"][0].read_text(encoding="utf-8"))  # the finder finds


def test_an_environment_read_is_found_however_it_is_spelled():
    source = "import os as o\nfrom os import getenv\nx = o.environ.get('A')\ny = getenv('B')\nimport os\nos.putenv('C', '')\n"
    assert _environment_uses(source) == [2, 3, 6]


def test_every_variable_config_reads_is_in_the_readme():
    names = set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|CLAUDECODE)"', (PACKAGE / "config.py").read_text()))
    assert {"DATABASE_URL", "NEXUS_CONFIRM_TTL_MINUTES", "OPENAI_API_KEY", "NEXUS_WRITER_PASSWORD"} <= names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(name for name in names if not re.search(rf"`{name}[`=]", readme)) == []


def test_the_demo_catalogue_is_data_shipped_with_the_package():
    from nexusleads_lab.db.demo import catalogue

    assert (PACKAGE / "db" / "demo" / "catalogue.json").is_file()
    assert catalogue.ORGS[0][0] == "acme-analytics"
    assert catalogue.SHOWCASE[0][0] == catalogue.INJECTION_LOGIN == "mallory-injector"


FORMATTER_OFF = re.compile(r"#\s*fmt:\s*(skip|off)\b")


def test_the_formatter_owns_every_line():
    """CONTRIBUTING.md says `ruff format` owns the layout; a formatter-off comment would quietly take lines back."""
    sources = [p for d in ("nexusleads_lab", "tests", "benchmarks", "scripts") for p in (ROOT / d).rglob("*.py")]
    sources.append(ROOT / "conftest.py")
    kept = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if FORMATTER_OFF.search(line)
    ]
    assert len(sources) > 100 and not kept, kept


def test_no_test_runs_an_event_loop_in_the_test_thread():
    """The browser tests' sync Playwright keeps an event loop running in the test thread for the
    rest of the session, so ``asyncio.run`` called there fails, but only in the whole suite's order
    (twice a test passed alone and failed in CI). A test runs its coroutines on a loop of its own
    thread: ``pool.submit(asyncio.run, ...)``, as ``test_server_boundary.in_own_loop`` does."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        submitted = {
            id(arg)
            for call in ast.walk(tree)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "submit"
            for arg in call.args
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run", "run_until_complete")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("asyncio", "loop")
                and id(node) not in submitted
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"asyncio.run in the test thread: {offenders}"
