"""Evaluation suites: questions with their gold SQL, from YAML or JSON.

A suite is a mapping with ``questions:`` (``verified_queries:``, Snowflake Cortex Analyst's key,
works too) or a bare list; each question is ``{name?, question, sql}``, other keys ignored (so a
Cortex Analyst semantic model's verified queries load as they are). Without a file, the suite
bundled with the package runs: questions over the demo data (``suites/demo.yaml``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

BUNDLED = "demo"


class SuiteError(ValueError):
    """A suite that cannot run: the message names the file, the question and what to fix."""


@dataclass(frozen=True)
class Question:
    name: str
    question: str
    sql: str


@dataclass(frozen=True)
class Suite:
    source: str  # what the person named: a path, or "demo (bundled)"
    questions: tuple[Question, ...]


def bundled_path(name: str = BUNDLED) -> Path:
    """The bundled suite's file inside the installed package."""
    return Path(str(resources.files("nexusleads_lab.eval") / "suites" / f"{name}.yaml"))


def load_suite(path: str | Path | None = None) -> Suite:
    """The suite at ``path`` (YAML or JSON), or the bundled demo suite; SuiteError otherwise."""
    if path is None:
        return parse_suite(bundled_path().read_text(encoding="utf-8"), f"{BUNDLED} (bundled)")
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"The suite file {where} does not exist; give the path of a YAML or JSON suite.") from None
    except IsADirectoryError:
        raise SuiteError(f"{where} is a folder; give the path of a YAML or JSON suite file.") from None
    except UnicodeDecodeError:
        raise SuiteError(f"The suite file {where} is not UTF-8 text; save it as UTF-8 YAML or JSON.") from None
    except OSError as exc:
        raise SuiteError(f"The suite file {where} cannot be read ({exc.strerror}).") from None
    return parse_suite(text, where, json_only=Path(path).suffix.lower() == ".json")


def parse_suite(text: str, source: str, *, json_only: bool = False) -> Suite:
    """A suite from its text; ``source`` names it in every message."""
    data = _parse(text, source, json_only)
    if isinstance(data, dict):
        key = next((k for k in ("questions", "verified_queries") if k in data), None)
        if key is None:
            raise SuiteError(
                f"The suite {source} is a mapping without `questions:`; list the questions under `questions:` "
                "(each with `question` and `sql`), or make the file a list of them."
            )
        entries = data[key]
        where = f"`{key}:` of {source}"
    elif isinstance(data, list):
        entries, where = data, source
    elif data is None:
        raise SuiteError(f"The suite {source} is empty; list questions, each with `question` and `sql`.")
    else:
        raise SuiteError(
            f"The suite {source} holds a {type(data).__name__}, not questions; write a list of "
            "`{name, question, sql}` entries, or a mapping with `questions:`."
        )
    if not isinstance(entries, list):
        raise SuiteError(f"{where} is not a list; list the questions, each with `question` and `sql`.")
    if not entries:
        raise SuiteError(f"The suite {source} has no questions; add at least one with `question` and `sql`.")
    questions = [_question(entry, i, source) for i, entry in enumerate(entries, start=1)]
    seen: dict[str, int] = {}
    for i, q in enumerate(questions, start=1):
        if q.name in seen:
            raise SuiteError(
                f"Questions {seen[q.name]} and {i} of {source} are both named {q.name!r}; give each a "
                "different `name` (a saved run is compared with a later one by name)."
            )
        seen[q.name] = i
    return Suite(source=source, questions=tuple(questions))


def _parse(text: str, source: str, json_only: bool) -> Any:
    if json_only:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(
                f"The suite {source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SuiteError(f"The suite {source} is not valid YAML: {exc.problem or exc.context}{at}.") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"The suite {source} is not valid YAML: {exc}.") from None


def _question(entry: Any, number: int, source: str) -> Question:
    if not isinstance(entry, dict):
        raise SuiteError(
            f"Question {number} of {source} is a {type(entry).__name__}, not a mapping; write it as "
            "`{name, question, sql}`."
        )
    name = entry.get("name")
    label = f"Question {number} ({name!r})" if name not in (None, "") else f"Question {number}"
    missing = [key for key in ("question", "sql") if not _text(entry.get(key))]
    if missing:
        what = " and ".join(f"`{key}`" for key in missing)
        raise SuiteError(
            f"{label} of {source} has no {what}; every question needs `question` (what is asked) and `sql` "
            "(the gold query whose result the answer must reproduce)."
        )
    if name is not None and not isinstance(name, (str, int)):
        raise SuiteError(f"{label} of {source} has a `name` that is not text; name it with a short string.")
    return Question(
        name=str(name).strip() if name not in (None, "") else f"q{number}",
        question=str(entry["question"]).strip(),
        sql=str(entry["sql"]).strip(),
    )


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
