"""Joins the front end's ES modules (``js/<name>/*.js``) into the one module anywidget loads.

anywidget imports a widget's ``_esm`` from a single string, where ``import ... from "./x.js"``
has nothing to resolve against. So each module's body runs in its own function scope (its
names stay its own, as in a real module), its ``export``s become that function's result, and
its imports read them. Only the forms the panel's modules use are accepted: ``import { a, b }
from "./x.js";`` and ``export function|class|const|let|async function NAME``; the entry keeps
its ``export default``. Anything else is an error here rather than a broken page.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import PurePosixPath

from .assets import asset

_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"(\./[\w./-]+\.js)";?[ \t]*$', re.M)
_ANY_IMPORT = re.compile(r"^\s*import\b", re.M)
_EXPORT = re.compile(r"^export\s+((?:async\s+)?function\*?|class|const|let)\s+([A-Za-z_$][\w$]*)", re.M)
_OTHER_EXPORT = re.compile(r"^export\b(?!\s+default\b)", re.M)


class BundleError(ValueError):
    """A module uses a form this joiner does not handle."""


@cache
def bundle(entry: str) -> str:
    """The ES module ``js/<entry>`` with every module it imports (transitively) inlined."""
    order: list[str] = []
    sources: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in sources:
            return
        if name in path:
            raise BundleError(f"js/{name}: import cycle through {' -> '.join(path)}")
        text = asset(name).read_text(encoding="utf-8")
        for _names, target in _IMPORT.findall(text):
            visit(_resolve(name, target), (*path, name))
        sources[name] = text
        order.append(name)

    visit(entry, ())
    parts = ["// Joined by nexusleads_lab/ui/esm.py from: " + ", ".join(f"js/{n}" for n in order), "const __nx = {};"]
    for name in order:
        body, exports = _module_body(name, sources[name], entry=name == entry)
        if name == entry:
            parts.append(body)
        else:
            result = "return { " + ", ".join(exports) + " };"
            parts.append(f"__nx[{json.dumps(name)}] = (() => {{\n{body}\n{result}\n}})();")
    return "\n\n".join(parts) + "\n"


def _resolve(importer: str, target: str) -> str:
    parts: list[str] = []
    for piece in (PurePosixPath(importer).parent / target).parts:
        if piece == "..":
            if not parts:
                raise BundleError(f"js/{importer}: {target} is outside js/")
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


def _module_body(name: str, text: str, *, entry: bool) -> tuple[str, list[str]]:
    def as_const(match: re.Match) -> str:
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        if any(not re.fullmatch(r"[A-Za-z_$][\w$]*", n) for n in names):
            raise BundleError(f"js/{name}: only plain named imports are joined: {match.group(0)}")
        return f"const {{ {', '.join(names)} }} = __nx[{json.dumps(_resolve(name, match.group(2)))}];"

    body = _IMPORT.sub(as_const, text)
    if (other := _ANY_IMPORT.search(body)) is not None:
        raise BundleError(f"js/{name}: an import this joiner does not handle: {other.group(0)}")
    exports = [m.group(2) for m in _EXPORT.finditer(body)]
    body = _EXPORT.sub(lambda m: f"{m.group(1)} {m.group(2)}", body)
    if _OTHER_EXPORT.search(body) or (not entry and re.search(r"^export\s+default\b", body, re.M)):
        raise BundleError(f"js/{name}: an export this joiner does not handle")
    return body, exports


__all__ = ["BundleError", "bundle"]
