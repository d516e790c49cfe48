"""The tools the model may call: ``psql`` (a read query) and ``read_file`` (a skill file).

What goes back to the model is bounded whatever the result size: the full result stays in
the kernel (a DataFrame when the notebook asks for it) under a short result id, and the model
gets its shape and a cut preview of at most ``MAX_TOOL_BYTES``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import fastjson
from ..db.engine import Engine, QueryResult
from ..db.errors import QueryError
from ..db.meta import is_meta
from ..db.meta import run as run_meta

MAX_TOOL_BYTES = 8 * 1024
PREVIEW_ROWS = 20
CELL_CHARS = 80

TOOL_SPECS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "psql",
            "description": (
                "Run ONE read-only SQL query (SELECT / WITH / VALUES / TABLE) against the PLG lead database. "
                "The full result is kept in the notebook as a DataFrame under a result id (r1, r2, ...); you see "
                "its columns, row count and a short preview. Aggregate in SQL; reference result ids in dashboards. "
                "psql's \\dt, \\d NAME, \\d+ NAME, \\dn, \\dv and \\di describe the schema."
            ),
            "parameters": {
                "type": "object",
                "properties": {"sql": {"type": "string", "description": "one PostgreSQL SELECT statement"}},
                "required": ["sql"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file inside a skill folder (for example a SKILL.md listed in the instructions).",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "path of the file, as listed"}},
                "required": ["path"],
                "additionalProperties": False,
            },
        },
    },
]
TOOL_NAMES = tuple(spec["function"]["name"] for spec in TOOL_SPECS)


@dataclass
class ToolOutcome:
    """One executed tool call: what the model sees, and what the person and the notebook keep."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    content: str  # sent back to the model, at most MAX_TOOL_BYTES
    ok: bool
    elapsed_ms: float
    result_id: str | None = None
    result: QueryResult | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_arguments(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = fastjson.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the tool arguments are not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError("the tool arguments must be a JSON object")
    return value


def _cell(value: Any) -> Any:
    kind = type(value)
    if kind is str:  # the common cells first, without pandas
        return _clip(value)
    if kind is int or kind is bool:
        return value
    if kind is float:
        return _float(value)
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (bool, int)):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            item = value.item()
        except Exception:
            pass
        else:
            return _float(item) if type(item) is float else item
    return _clip(value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False))


def _float(value: float) -> float | str | None:
    """NaN as None (as pandas shows it); an infinity as PostgreSQL writes it, ``"Infinity"`` or
    ``"-Infinity"`` (the model's JSON has no such number: ``json`` wrote a bare ``Infinity`` token,
    which is not JSON, and ``fastjson`` would write ``null``, which reads as NULL)."""
    if value != value:
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _clip(text: str) -> str:
    """A cell's text as the model sees it: at most ``CELL_CHARS`` characters, an ellipsis if cut."""
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def preview_payload(result_id: str | None, result: QueryResult, max_bytes: int = MAX_TOOL_BYTES) -> str:
    """The model's view of a result: shape, types and the first rows, cut to fit ``max_bytes``."""
    columns = [{"name": str(n), "type": t} for n, t in result.column_types.items()]
    if len(columns) != result.table.num_columns:  # duplicate names collapse in the dict: the frame's own
        columns = [{"name": str(n), "type": str(d)} for n, d in zip(result.df.columns, result.df.dtypes)]
    # Only the rows shown are converted, straight from Arrow: the values the DataFrame holds.
    shown = min(result.row_count, PREVIEW_ROWS)
    cells = [
        result.exact_values(i, shown)  # exact decimal text where a float would change the value
        if i in result.numeric_text
        else [_cell(v) for v in result.column_values(i, shown)]
        for i in range(result.table.num_columns)
    ]
    rows = [list(row) for row in zip(*cells)] if cells else [[] for _ in range(shown)]
    payload: dict[str, Any] = {
        "result_id": result_id,
        "row_count": result.row_count,
        "truncated": result.truncated,
        "columns": columns,
        "preview_rows": len(rows),
        "rows": rows,
    }
    if result.truncated:
        payload["note"] = result.truncation_note
    data = _dumpb(payload)
    while len(data) > max_bytes and payload["rows"]:
        payload["rows"] = payload["rows"][: len(payload["rows"]) // 2] if len(payload["rows"]) > 1 else []
        payload["preview_rows"] = len(payload["rows"])
        data = _dumpb(payload)
    while len(data) > max_bytes and len(payload["columns"]) > 1:
        keep = len(payload["columns"]) // 2
        payload["columns_omitted"] = len(columns) - keep
        payload["columns"] = payload["columns"][:keep]
        data = _dumpb(payload)
    if len(data) > max_bytes:  # pathological names: still valid JSON, still bounded
        data = _dumpb({"result_id": result_id, "row_count": result.row_count, "note": "result too wide to preview"})
    return data.decode()


def _dumpb(payload: dict) -> bytes:
    """Compact UTF-8 JSON (``fastjson``: ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``
    as orjson writes it; a float's digits may be spelled otherwise, ``1e16`` for ``1e+16``)."""
    return fastjson.dumpb(payload, default=str)


def error_payload(message: str) -> str:
    data = _dumpb({"error": message})
    return (data if len(data) <= MAX_TOOL_BYTES else _dumpb({"error": message[:2000] + "…"})).decode()


class ToolRunner:
    """Executes tool calls for one assistant; safe to call from worker threads."""

    def __init__(self, engine_provider, skills_provider) -> None:
        self._engine_provider = engine_provider
        self._skills_provider = skills_provider

    @property
    def engine(self) -> Engine:
        return self._engine_provider()

    def run(self, call_id: str, name: str, raw_arguments: str | None, result_id: str | None) -> ToolOutcome:
        started = time.perf_counter()

        def done(content: str, ok: bool, **kw) -> ToolOutcome:
            return ToolOutcome(
                call_id=call_id,
                tool=name,
                arguments=args,
                content=content,
                ok=ok,
                elapsed_ms=(time.perf_counter() - started) * 1000,
                **kw,
            )

        args: dict[str, Any] = {}
        try:
            args = parse_arguments(raw_arguments)
        except ValueError as exc:
            return done(error_payload(str(exc)), False, error=str(exc))
        if name == "psql":
            sql = args.get("sql")
            if not isinstance(sql, str) or not sql.strip():
                msg = "psql needs one argument, sql: the SELECT statement to run."
                return done(error_payload(msg), False, error=msg)
            try:
                if is_meta(sql):  # psql's \dt, \d NAME, ...: the catalog through the same read path
                    text = run_meta(self.engine, sql).text
                    text = text.encode()[:MAX_TOOL_BYTES].decode(errors="ignore")
                    return done(text, True, extra={"meta": True})
                result = self.engine.read(sql)
            except QueryError as exc:
                return done(error_payload(exc.paragraph()), False, error=exc.paragraph())
            return done(preview_payload(result_id, result), True, result_id=result_id, result=result)
        if name == "read_file":
            path = args.get("path")
            if not isinstance(path, str) or not path.strip():
                msg = "read_file needs one argument, path: a file inside a skill folder."
                return done(error_payload(msg), False, error=msg)
            try:
                text = self._skills_provider().read_file(path)
            except Exception as exc:  # SkillFileError and OS errors: one sentence for the model
                return done(error_payload(str(exc)), False, error=str(exc))
            return done(text, True, extra={"bytes": len(text.encode())})
        msg = f"There is no tool named {name!r}; the tools are {', '.join(TOOL_NAMES)}."
        return done(error_payload(msg), False, error=msg)
