"""One wording layer: Python words every label and sentence, the JavaScript only lays them out.

The front end's sources are read as text: every string literal in ``js/`` that reads as English
must be on the short list below (keys a browser names, console messages, link relations), and
every key the JavaScript asks ``words.UI`` for must be there. A sentence written again in the
JavaScript, as "Nothing was changed: …" once was beside Python's "The change failed and nothing
was written: …", fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from nexusleads_lab.words import UI

JS = Path(__file__).resolve().parent.parent / "js"

# Literals that read as English but are no one's wording: what a browser calls a key or a header,
# messages for the developer console, and link relations.
ALLOWED = {
    "Enter",  # KeyboardEvent.key
    "Escape",  # KeyboardEvent.key
    "Bearer {}",  # the Authorization header's scheme
    "nexus page: a listener failed",  # console.error
    "nexus panel: inserting a cell failed",  # console.warn
    "noopener noreferrer nofollow",  # rel
    "noopener noreferrer",  # rel
}

_TOKEN = re.compile(r"""//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`""", re.S)
_WORD = re.compile(r"[A-Za-z][a-z']+")
_CODE = re.compile(r"[<>#=]|^\.|^[\w-]+:|--|\\n")


def literals(source: str) -> list[str]:
    """The string literals of a JavaScript source, comments skipped, ``${...}`` read as ``{}``."""
    found = []
    for match in _TOKEN.finditer(source):
        token = match.group(0)
        if not token.startswith(("//", "/*")):
            found.append(re.sub(r"\$\{[^}]*\}", "{}", token[1:-1]))
    return found


def reads_as_english(text: str) -> bool:
    """A label or a sentence: a capitalised word, three words, or a sentence's end; not a CSS
    selector, a class list or an SVG path."""
    if _CODE.search(text) and not re.search(r"[A-Z][a-z]+ [a-z]+", text):
        return False
    tokens = text.split()
    words = [w for w in tokens if _WORD.fullmatch(w.strip(".,:;?!…“”()"))]
    if not words or (any("-" in w or "_" in w for w in tokens) and len(words) < 3):
        return False
    return bool(re.match(r"[A-Z]", text.strip(" ·(")) or len(words) >= 3 or text.rstrip().endswith(("…", ".", "?")))


def english_in_js() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(JS.rglob("*.js")):
        for text in literals(path.read_text(encoding="utf-8")):
            if reads_as_english(text) and text not in ALLOWED:
                found.setdefault(str(path.relative_to(JS)), []).append(text)
    return found


def test_the_detector_finds_the_wordings_that_were_written_twice():
    old = 'settle(outcome.text || `Nothing was changed: ${outcome.error || "the change failed"}`, "nx-failed");'
    assert [t for t in literals(old) if reads_as_english(t)] == ["Nothing was changed: {}"]
    assert [t for t in literals('label.textContent = busy ? "Working…" : `Ran ${n} steps`;') if reads_as_english(t)]
    assert not [
        t for t in literals('h("div", { class: "nx-msg nx-bot", "aria-hidden": "true" })') if reads_as_english(t)
    ]


def test_the_javascript_has_no_wording_of_its_own():
    assert english_in_js() == {}, "word these in nexusleads_lab/words.py (UI) and send them"


def test_every_word_the_javascript_asks_for_is_in_words_ui():
    asked: set[str] = set()
    for path in JS.rglob("*.js"):
        source = path.read_text(encoding="utf-8")
        for call in re.findall(r"\bsay\(([^()]*(?:\([^()]*\)[^()]*)*)\)", source):
            asked.update(re.findall(r"""(?<!get\()["'](\w+)["']""", call))  # not model.get("words")
        for prefix in re.findall(r"`(\w+_)\$\{where\}`", source):  # the empty panel: in a notebook or a page
            asked.update({prefix + "notebook", prefix + "page"})
    assert len(asked) > 40, sorted(asked)
    assert asked - UI.keys() == set(), "the JavaScript asks for words nobody wrote"
    python = "\n".join(p.read_text(encoding="utf-8") for p in (JS.parent / "nexusleads_lab").rglob("*.py"))
    unused = {key for key in UI.keys() - asked if f'UI["{key}"]' not in python and f'"{key}"' not in python}
    assert unused == set(), "words sent that nothing shows"
