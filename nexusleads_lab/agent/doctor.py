"""``nexus-lab doctor``: does this database and this model server work with the product?

It reads through the scoped read path once, then makes one small streamed request with the
product's own tools, settings and client (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
``NEXUS_MODEL``), asking for two ``psql`` calls at once, and reads the answer with the same
reader a turn uses, so the quirks it reports are the ones a turn would meet.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from ..db.errors import QueryError, mask_secrets
from ..words import plural
from .completion import StreamReader, prepare_calls
from .model_call import open_stream
from .model_errors import describe_model_error
from .provider import MISSING_CONFIG, ModelSettings, make_client, mask_api_key
from .tools import TOOL_NAMES

PROBE_SQL = ("SELECT 1 AS one", "SELECT 2 AS two")
PROBE_MESSAGES = [
    {
        "role": "system",
        "content": (
            "This is a connection check. Call the psql tool twice, in parallel, in this one reply: once with "
            f"sql {PROBE_SQL[0]!r} and once with sql {PROBE_SQL[1]!r}. Do not write any text."
        ),
    },
    {"role": "user", "content": "Run both checks now."},
]


@dataclass
class ServerCheck:
    """What the model server did with one streamed request that offers the tools."""

    answers: bool = False
    streams: bool = False
    calls_tools: bool = False
    parallel_calls: bool = False
    reports_usage: bool = False
    quirks: list[str] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None


@dataclass
class Report:
    database_ok: bool = False
    database: str = ""
    scope: str = ""
    database_error: str | None = None
    model: str = ""
    base_url: str | None = None
    configured: bool = False
    server: ServerCheck | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "usable": self.usable,
            "problems": self.problems,
            "database": {
                "ok": self.database_ok,
                "url": self.database,
                "scope": self.scope,
                "error": self.database_error,
            },
            "model": {"name": self.model, "base_url": self.base_url, "configured": self.configured},
            "server": dataclasses.asdict(self.server) if self.server is not None else None,
        }


def run(settings: ModelSettings | None = None, database=None, org: str | None = None) -> Report:
    """Check the database (in ``org``'s scope), then the model server; never raises."""
    from ..config import current_org

    settings = settings or ModelSettings.from_env()
    org = org if org is not None else current_org()
    report = Report(model=settings.model, base_url=settings.base_url)
    _check_database(report, database, org)
    _check_model(report, settings)
    return report


def _check_database(report: Report, database, org: str | None) -> None:
    from ..db.guard import describe_scope

    report.scope = describe_scope(org)
    try:
        if database is None:
            from ..db.database import open_database

            database = open_database()
        report.database = database.masked_url
        result = database.engine_for(org).read("SELECT count(*) AS projects FROM projects")
    except QueryError as exc:
        report.database_error = exc.paragraph()
    except Exception as exc:  # anything else that stops the read path, said once
        report.database_error = mask_secrets(f"{type(exc).__name__}: {exc}")
    else:
        report.database_ok = True
        report.scope += f" ({int(result.df.iloc[0, 0]):,} projects visible)"
    if report.database_error:
        report.problems.append(f"The database cannot be read: {report.database_error}")


def _check_model(report: Report, settings: ModelSettings) -> None:
    if settings.replay:
        report.configured = True
        report.problems.append(
            f"NEXUS_REPLAY is set ({settings.replay}): answers come from a recording, so there is no model server "
            "to check. Unset it, and set OPENAI_BASE_URL (and OPENAI_API_KEY, NEXUS_MODEL) to check a server."
        )
        return
    if settings.mode == "unconfigured":
        report.problems.append(MISSING_CONFIG)
        return
    report.configured = True
    # No retries: the doctor reports what one request does, quickly.
    settings = dataclasses.replace(settings, max_retries=0, timeout_s=min(settings.timeout_s, 60.0), record=None)
    report.server = check = _probe(settings)
    where = f"{settings.model} at {settings.base_url or 'api.openai.com'}"
    if check.error:
        report.problems.append(check.error)
    elif not check.streams:
        report.problems.append(f"{where} answered, but not as a stream of events; the product needs streaming.")
    elif not check.calls_tools:
        report.problems.append(
            f"{where} streams, but did not call the psql tool when asked to: the product cannot query the database "
            "with it. Use a model that supports tool calling (and, for vLLM, start it with --enable-auto-tool-choice "
            "and a --tool-call-parser; for llama-server, --jinja)."
        )


def _probe(settings: ModelSettings) -> ServerCheck:
    import openai

    check = ServerCheck()
    reader = StreamReader()
    started = time.perf_counter()
    client = None
    try:
        client = make_client(settings)
        stream = open_stream(client, settings.model, PROBE_MESSAGES)
        check.answers = True
        for chunk in stream:
            reader.feed(chunk)
    except Exception as exc:
        where = settings.base_url or "api.openai.com"
        if isinstance(exc, openai.APITimeoutError):
            message = f"{where} did not answer within {settings.timeout_s:g} seconds; is the model still loading?"
        elif isinstance(exc, openai.APIConnectionError):
            message = f"Nothing answers at {where}: start the model server, or check OPENAI_BASE_URL (host, port, /v1)."
        else:
            message = describe_model_error(exc)
        check.error = mask_api_key(mask_secrets(message), settings.api_key)
        # an HTTP error, or an error inside the stream, is still an answer; a refused connection is not
        check.answers = not isinstance(exc, openai.APIConnectionError) and isinstance(exc, openai.APIError)
    finally:
        if client is not None:
            client.close()
    check.seconds = round(time.perf_counter() - started, 2)
    completion = reader.finish()
    calls = prepare_calls(completion, TOOL_NAMES)
    usable = [c for c in calls if c.known and c.sent_arguments != "{}"]
    check.chunks = completion.chunks
    check.streams = completion.chunks > 0
    check.calls = [{"name": c.name, "arguments": c.arguments} for c in calls]
    check.calls_tools = any(c.name == "psql" for c in usable)
    check.parallel_calls = len(usable) >= 2
    check.usage = completion.usage
    check.reports_usage = bool(completion.usage)
    check.finish_reason = completion.finish_reason
    check.quirks = list(completion.quirks)
    if completion.error and not check.error:
        check.error = f"{settings.model} reported an error in its stream: {completion.error}"
    return check


def describe(report: Report) -> str:
    """The report in plain words, one line per check, then the verdict."""
    lines = []
    if report.database_ok:
        lines.append(f"database      ok: {report.database}, {report.scope}")
    else:
        lines.append(f"database      NOT OK: {report.database_error}")
    if not report.configured:
        lines.append("model         not configured")
    else:
        lines.append(f"model         {report.model} at {report.base_url or 'api.openai.com'}")
    check = report.server
    if check is not None:
        if not check.answers:
            lines.append("answers       no")
        else:
            lines.append(f"answers       yes ({check.seconds} s)")
            lines.append(f"streams       {'yes' if check.streams else 'no'} ({plural(check.chunks, 'chunk')})")
            shown = ", ".join(f"{c['name'] or '(no name)'}({c['arguments']})" for c in check.calls) or "none"
            lines.append(f"calls tools   {'yes' if check.calls_tools else 'no'}: {shown}")
            lines.append(
                f"in parallel   {'yes' if check.parallel_calls else 'no'} ({plural(len(check.calls), 'call')} in one answer)"
            )
            if check.reports_usage:
                u = check.usage
                lines.append(
                    f"usage         yes ({u.get('prompt_tokens', 0)} prompt + {u.get('completion_tokens', 0)} "
                    f"completion, {u.get('total_tokens', 0)} total tokens)"
                )
            else:
                lines.append("usage         no (token counts will show as unknown)")
            lines.append(f"quirks        {'; '.join(check.quirks) if check.quirks else 'none'}")
    if report.usable:
        lines.append("verdict       usable: NexusLeads Lab can work with this database and model server.")
    else:
        lines.append("verdict       NOT usable:")
        lines += [f"  - {problem}" for problem in report.problems]
    return "\n".join(lines)
