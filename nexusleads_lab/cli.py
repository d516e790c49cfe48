"""``nexus-lab``: a thin command line over the database layer and the assistant."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import agent_shell_marker, current_org, environment_with
from .db.errors import QueryError, mask_secrets, shorten
from .safetext import visible
from .words import plural

if TYPE_CHECKING:
    from .agent.assistant import Assistant
    from .agent.events import Event
    from .eval.report import Item as EvalItem


def _emit_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, default=str, ensure_ascii=False) + "\n")


def _fail(message: str, as_json: bool = False, code: int = 1) -> int:
    message = mask_secrets(message)
    if as_json:
        _emit_json({"error": message})
    else:
        print(f"nexus-lab: {message}", file=sys.stderr)
    return code


# -- db ------------------------------------------------------------------------------------


def cmd_db(args) -> int:
    from .db import schema
    from .db.database import open_database
    from .db.embedded import stop_embedded

    if args.action == "roles":
        try:
            sys.stdout.write(schema.roles_script(args.org, dedicated=args.dedicated))
        except ValueError as exc:
            return _fail(str(exc))
        return 0
    if args.action == "stop":
        print("embedded PostgreSQL stopped" if stop_embedded() else "embedded PostgreSQL was not running")
        return 0
    db = open_database()
    if args.action == "reset":
        from .db.demo import reset_demo

        message = reset_demo(db)
        if args.json:
            _emit_json({"database": db.masked_url, "message": message})
        else:
            print(message)
        return 0
    from .db.demo import demo_drift

    with db.connect_admin(autocommit=True) as conn:
        version = schema.schema_version(conn)
        server_version = conn.info.parameter_status("server_version")
        drift = demo_drift(conn)
    sizes = db.table_sizes()
    info = {
        "kind": db.kind,
        "url": db.masked_url,
        "pgdata": str(db.embedded.pgdata) if db.embedded else None,
        "server_version": server_version,
        "schema_version": version,
        "scope": db.scope or "*",
        "scope_label": db.scope_label,
        "tables": dict(sizes),
        "demo": drift.as_dict(),
    }
    if args.json:
        _emit_json(info)
        return 0
    print(f"database   {db.describe()}")
    print(f"server     PostgreSQL {server_version}, schema version {version}")
    print(f"scope      {db.scope_label} (NEXUS_ORG)")
    print(f"demo data  {drift.describe(embedded=db.embedded is not None)}")
    width = max(len(t) for t, _ in sizes) if sizes else 10
    for table, count in sizes:
        print(f"  {table:<{width}}  {count:>12,}")
    return 0


# -- seed ----------------------------------------------------------------------------------


def cmd_seed(args) -> int:
    from .db.database import open_database
    from .db.demo import load_demo_data

    db = open_database(seed=False)
    started = time.perf_counter()
    with db.connect_admin(autocommit=True) as conn:
        try:
            summary = load_demo_data(conn, contributors=args.contributors, seed=args.seed, reset=args.reset)
        except ValueError as exc:
            return _fail(str(exc), args.json)
    if args.json:
        _emit_json(
            {
                "database": db.masked_url,
                "seconds": round(time.perf_counter() - started, 2),
                "seed": summary.seed,
                "tables": summary.counts,
            }
        )
    else:
        print(f"loaded into {db.describe()}")
        print(summary)
    return 0


# -- sql -----------------------------------------------------------------------------------


def cmd_sql(args) -> int:
    from .db import meta
    from .db.database import open_database

    sql = args.sql if args.sql != "-" else sys.stdin.read()
    try:
        db = open_database()
        if meta.is_meta(sql):  # psql's \dt, \d NAME, ...: the catalog through the same read path
            described = meta.run(db.engine, sql)
            if args.json:
                _emit_json({"command": described.command, "output": described.text})
            else:
                print("\n".join(visible(line) for line in described.text.split("\n")), end="")
            return 0
        result = db.engine.read(sql, row_cap=args.row_cap, timeout_ms=args.timeout_ms)
    except QueryError as exc:
        return _fail(exc.paragraph(), args.json)
    if args.json:
        _emit_json(result.to_json())
        return 0
    from .ui.text import result_text

    print(result_text(result, max_rows=args.max_rows, scope=db.scope_label))
    return 0


# -- psql ----------------------------------------------------------------------------------


def cmd_psql(args) -> int:
    from .db.database import open_database

    db = open_database()
    psql = shutil.which("psql")
    if db.embedded:
        from .db.embedded import bundled_psql

        psql = bundled_psql() or psql
    if not psql:
        return _fail("psql is not installed; install the PostgreSQL client (apt-get install postgresql-client).")
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    # The password goes through the environment, never the command line (/proc/PID/cmdline).
    params = conninfo_to_dict(db.admin_url)
    password = params.pop("password", None)
    env = environment_with(PGPASSWORD=str(password)) if password else environment_with()
    os.execvpe(psql, [psql, make_conninfo("", **params), *args.psql_args], env)
    return 0  # not reached


# -- ask / conversations ------------------------------------------------------------------


def _print_event(event: Event) -> None:
    """Progress on stderr, so stdout holds only the answer."""
    from .ui.text import event_text

    line = event_text(event)
    if line is not None:
        print(line, file=sys.stderr)


def _assistant(args: argparse.Namespace) -> Assistant:
    from .agent.assistant import Assistant

    assistant = Assistant(model=getattr(args, "model", None))
    if getattr(args, "thread", None):
        assistant.resume(_conversation_id(assistant, args.thread))
    return assistant


def cmd_ask(args) -> int:
    assistant = _assistant(args)
    question = args.question if args.question != "-" else sys.stdin.read()
    on_event = (lambda e: _emit_json(e.to_dict())) if args.json else _print_event
    result = assistant.ask(question, on_event=on_event, origin="cli")
    if args.json:
        return 0 if result.ok else 1
    if result.ok:
        from .ui.text import response_text

        print(response_text(result.response_dict()))
        for note in result.notes:
            print(f"note: {visible(str(note))}", file=sys.stderr)
        if result.thread_id:
            print(f"(conversation {result.thread_id}; continue with --thread {result.thread_id})", file=sys.stderr)
    return 0 if result.ok else 1


def cmd_confirm(args) -> int:
    from .agent.confirm import ConfirmationError

    marker = agent_shell_marker()
    if marker:
        # A proposal is an agent asking a person; the agent answering it itself would make it none.
        # A speed bump, not the boundary: the agent's sandbox (no socket to the database) is that.
        return _fail(
            f"Refusing to confirm from an agent's shell ({marker} is set): a person confirms a proposal, in "
            "their own terminal, the notebook, the chat panel or the web page. Nothing was run and the proposal "
            "is still pending.",
            args.json,
        )
    assistant = _assistant(args)
    try:
        outcome = assistant.confirm(args.id) if not args.cancel else assistant.decline(args.id)
    except ConfirmationError as exc:
        return _fail(str(exc), args.json)
    if args.json:
        _emit_json(outcome.as_dict())
    else:
        print(outcome.report())
    return 0 if outcome.status != "failed" else 1


def cmd_conversations(args) -> int:
    from .agent.assistant import Assistant

    assistant = Assistant()
    if args.delete:
        assistant.delete(_conversation_id(assistant, args.delete))
    if args.rename:
        assistant.rename(_conversation_id(assistant, args.rename[0]), args.rename[1])
    if args.show:
        messages = assistant.history(_conversation_id(assistant, args.show))
        if args.json:
            _emit_json(messages)
        else:
            from .ui.text import transcript_text

            print(transcript_text(assistant.transcript(_conversation_id(assistant, args.show)), assistant.user))
        return 0
    items = [c.as_dict() for c in assistant.conversations()]
    if args.json:
        _emit_json(items)
        return 0
    if not items:
        print(f"No conversations yet for {_whose(assistant)}.")
    for c in items:
        print(
            f"{c['id']}  {c['updated_at'][:16].replace('T', ' ')}  {plural(c['messages'], 'message'):>12}  "
            f"{visible(str(c['title']))}"
        )
    return 0


def _whose(assistant: Assistant) -> str:
    """'analyst in acme-analytics': whose conversations a command looked in."""
    from .db.guard import describe_scope

    return f"{visible(assistant.user)} in {describe_scope(assistant.org)}"


def _conversation_id(assistant: Assistant, given: str) -> str:
    """The full id of the one conversation whose id starts with ``given`` (QueryError otherwise)."""
    import uuid

    try:
        return str(uuid.UUID(given))  # a whole id: the store says whether it is there
    except ValueError:
        pass
    prefix = given.strip().lower()
    store = assistant.store
    found = [c for c in store.list(limit=100_000) if c.id.startswith(prefix)] if prefix and store else []
    if len(found) == 1:
        return found[0].id
    if not found:
        raise QueryError(
            f"No conversation of {_whose(assistant)} has an id beginning {given!r}; "
            "`nexus-lab conversations` lists them with their ids."
        )
    shown = ", ".join(f"{c.id[:13]} ({shorten(visible(c.title), 40)})" for c in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    raise QueryError(
        f"{given!r} begins {len(found)} conversation ids of {_whose(assistant)}: {shown}{more}; give more of the id."
    )


# -- eval ----------------------------------------------------------------------------------


def cmd_eval(args) -> int:
    """Ask a suite's questions and score the answers by execution accuracy (``nexusleads_lab.eval``)."""
    import signal

    from tqdm import tqdm

    from .agent.provider import ModelConfigError
    from .eval.report import load_baseline
    from .eval.runner import eval_assistant, prepare, run
    from .eval.suite import SuiteError, load_suite
    from .ui.text import eval_report_text

    try:
        suite = load_suite(args.suite)
        baseline = load_baseline(args.baseline) if args.baseline else None
        if args.out and not Path(args.out).resolve().parent.is_dir():
            raise SuiteError(f"--out {args.out}: its folder does not exist; create it or name another file.")
        assistant = eval_assistant(model=args.model)
        prepared = prepare(suite, assistant.engine)  # every gold SQL runs before the first model request
        assistant.client()
    except SuiteError as exc:
        return _fail(str(exc), args.json, code=2)
    except ModelConfigError as exc:
        return _fail(str(exc), args.json)
    bar = tqdm(total=len(prepared), desc="eval", unit="question", file=sys.stderr, disable=None, leave=False)
    counts = {"passed": 0, "failed": 0, "error": 0}

    def asking(question) -> None:
        done = f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors"
        bar.set_postfix_str(f"{done} · asking {shorten(visible(question.name), 30)}")

    def answered(item: EvalItem) -> None:
        counts[item.status] += 1
        bar.update(1)

    report = run(suite, prepared, assistant, on_item=answered, on_start=asking, origin="cli")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the result, partial or whole, gets written in full
    bar.close()
    assistant.close()
    if baseline is not None:
        report.compare_with(baseline, args.baseline, [q.name for q in suite.questions])
    payload = report.as_dict()
    unsaved = None
    if args.out:
        try:
            Path(args.out).write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8")
        except OSError as exc:
            unsaved = f"the run could not be saved to {args.out} ({exc.strerror}); it is printed here only"
    if args.json:
        _emit_json(payload)
    else:
        print(eval_report_text(report))
    if unsaved:
        _fail(unsaved)
    if report.interrupted:
        return 130
    if unsaved:
        return 1
    if args.min_score is not None and report.score < args.min_score:
        print(f"nexus-lab: the score {report.score:.1%} is below --min-score {args.min_score:g}", file=sys.stderr)
        return 1
    return 0


# -- demo ----------------------------------------------------------------------------------


def _self_command() -> str:
    """How to run nexus-lab again from this shell: the venv's script when it is not on PATH."""
    script = Path(sys.executable).with_name("nexus-lab")
    if shutil.which("nexus-lab") == str(script) or not script.exists():
        return "nexus-lab"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def cmd_demo(args) -> int:
    """Database up with demo data, a summary, then JupyterLab on the quickstart notebook."""
    from .agent.provider import ModelSettings
    from .db.database import open_database
    from .db.demo import reset_demo

    started = time.perf_counter()
    db = open_database()
    if db.embedded is not None:  # start from the demo data as seeded, so every run shows the same numbers
        print(reset_demo(db, only_if_changed=True))
    sizes = dict(db.table_sizes())
    print(f"database   {db.describe()} ready in {time.perf_counter() - started:.1f}s")
    print(
        f"           {sizes.get('projects', 0)} projects, {sizes.get('repositories', 0):,} repositories, "
        f"{sizes.get('contributors', 0):,} contributors, {sizes.get('lead_scores', 0):,} lead scores"
    )
    settings = ModelSettings.from_env()
    if settings.mode == "live":
        print(f"model      {settings.describe()}")
    else:
        print("model      none configured: the notebooks replay their recorded answers (NEXUS_REPLAY).")
        print("           For a live model: export OPENAI_API_KEY=... (and OPENAI_BASE_URL for another service),")
        print("           then set REPLAY = None in a notebook's first cell.")
    if db.embedded is not None:
        print(f"stop       the embedded PostgreSQL keeps running until: {_self_command()} db stop  (or: make stop)")
    notebooks = Path(args.notebooks).resolve()
    target = notebooks / "quickstart.ipynb"
    if args.no_lab:
        return 0
    if not target.exists():
        return _fail(f"{target} not found; run make demo from the repository root.")
    # The URL JupyterLab prints (and opens) is the quickstart itself, not the Launcher.
    lab = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={notebooks}",
        str(target),
        f"--LabApp.default_url=/lab/tree/{target.relative_to(notebooks).as_posix()}",
    ]
    if args.port:
        lab.append(f"--ServerApp.port={args.port}")
    if args.no_browser:
        lab.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lab.append("--allow-root")  # containers and CI machines often run as root
    print(
        f"jupyter    opening {target.name}: Run All, then ask in the chat panel its last cell opens; "
        "stop JupyterLab with Ctrl+C"
    )
    sys.stdout.flush()
    os.execv(sys.executable, lab)
    return 0  # not reached


# -- serve -------------------------------------------------------------------------------


def cmd_serve(args) -> int:
    from .server.app import secret_from_env, serve
    from .server.auth import bind_refusal, secret_refusal, valid_org

    secret = secret_from_env()
    refusal = secret_refusal(secret) or bind_refusal(args.host, secret)
    if refusal:
        return _fail(refusal, code=2)
    org = current_org()
    if not secret and org is not None and not valid_org(org):
        return _fail(f"NEXUS_ORG={org!r} is not an organization slug (lower-case letters, digits, dashes).", code=2)
    try:
        serve(args.host, args.port, workers=args.workers)
    except ValueError as exc:  # a setting the server cannot start with; the message says which
        return _fail(str(exc), code=2)
    return 0


def cmd_doctor(args) -> int:
    from .agent import doctor
    from .safetext import visible_lines

    report = doctor.run()
    if args.json:
        _emit_json(report.as_dict())
    else:  # the server's words may hold terminal escapes: shown, not obeyed
        print(visible_lines(doctor.describe(report)))
    return 0 if report.usable else 1


# -- mcp ---------------------------------------------------------------------------------


def cmd_mcp(args) -> int:
    """The read path and proposals as an MCP server: stdio for an agent's config file, or HTTP."""
    from .config import auth_secret
    from .db.database import open_database
    from .server.auth import bind_refusal, secret_refusal

    secret = auth_secret()
    if args.http:
        refusal = secret_refusal(secret) or bind_refusal(args.host, secret)
        if refusal:
            return _fail(refusal, code=2)
    database = open_database()  # stdout is the protocol on stdio: everything else goes to stderr
    from . import mcp

    if args.http:
        mcp.serve_http(database, args.host, args.port, secret)
    else:
        mcp.serve_stdio(database)
    return 0


# -- parser --------------------------------------------------------------------------------


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "db": cmd_db,
    "seed": cmd_seed,
    "sql": cmd_sql,
    "psql": cmd_psql,
    "ask": cmd_ask,
    "confirm": cmd_confirm,
    "conversations": cmd_conversations,
    "demo": cmd_demo,
    "serve": cmd_serve,
    "eval": cmd_eval,
    "doctor": cmd_doctor,
    "mcp": cmd_mcp,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexus-lab",
        description="NexusLeads Lab: ask the PLG lead database from the terminal, a notebook or the chat panel.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("db", help="show the active database, its schema version, table sizes and demo drift")
    p.add_argument(
        "action",
        nargs="?",
        choices=["show", "status", "reset", "roles", "stop"],
        default="show",
        help="show or status (default): the database, table sizes and whether the demo data changed "
        "since it was seeded; reset: restore the embedded database's demo data as seeded; roles: "
        "print the psql script (run as a superuser) that creates the least-privilege roles and "
        "row-level security policies; stop: stop the embedded server",
    )
    p.add_argument("--org", metavar="SLUG", help="with roles: the script for one organization's reader and writer")
    p.add_argument(
        "--dedicated",
        action="store_true",
        help="with roles: the database serves only this product, so also revoke every volatile "
        "built-in from PUBLIC (as the embedded database does)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("seed", help="load demo data (deterministic from --seed)")
    p.add_argument("--contributors", type=_positive_int, default=20_000, help="how many contributors (default 20000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--reset", action="store_true", help="delete the existing lead data first")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("sql", help="run one read query through the agent's read-only path")
    p.add_argument("sql", help="the SELECT statement ('-' reads it from standard input)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--row-cap", type=_positive_int, default=None, help="at most this many rows (default 100000)")
    p.add_argument("--timeout-ms", type=_positive_int, default=None, help="statement timeout (default 15000)")
    p.add_argument("--max-rows", type=_positive_int, default=50, help="rows to print (default 50)")

    p = sub.add_parser("psql", help="open psql on the active database")
    p.add_argument("psql_args", nargs=argparse.REMAINDER, help="extra arguments for psql")

    p = sub.add_parser("demo", help="start the database with demo data and open JupyterLab on the quickstart")
    p.add_argument("--notebooks", default="notebooks", help="folder with the notebooks (default ./notebooks)")
    p.add_argument("--port", type=_positive_int, help="JupyterLab port")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--no-lab", action="store_true", help="only prepare the database and print the summary")

    p = sub.add_parser("ask", help="ask the assistant a question (events on stderr, the answer on stdout)")
    p.add_argument("question", help="the question ('-' reads it from standard input)")
    p.add_argument("--json", action="store_true", help="print every event as a JSON line")
    p.add_argument("--thread", help="continue this conversation (its id, or the start of it)")
    p.add_argument("--model", help="model name (default: NEXUS_MODEL or gpt-4.1-mini)")

    p = sub.add_parser("confirm", help="run a proposed write, exactly as shown, once")
    p.add_argument("id", help="the confirmation id shown with the proposal")
    p.add_argument("--cancel", action="store_true", help="decline the proposal instead")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("conversations", help="list, show, rename or delete your conversations")
    p.add_argument("--show", metavar="ID", help="print one conversation as a transcript (an id, or the start of one)")
    p.add_argument("--rename", nargs=2, metavar=("ID", "TITLE"), help="rename a conversation")
    p.add_argument("--delete", metavar="ID", help="delete a conversation")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("eval", help="measure how well the model answers: a suite's questions scored against gold SQL")
    p.add_argument(
        "suite",
        nargs="?",
        metavar="SUITE",
        help="a YAML or JSON suite of {name, question, sql} (default: the bundled suite over the demo data)",
    )
    p.add_argument("--json", action="store_true", help="print the run as one JSON object")
    p.add_argument("--model", help="model name (default: NEXUS_MODEL or gpt-4.1-mini)")
    p.add_argument("--out", metavar="FILE", help="save the run as JSON (for --baseline later)")
    p.add_argument("--baseline", metavar="FILE", help="show which questions changed status since this saved run")
    p.add_argument(
        "--min-score",
        type=_fraction,
        metavar="X",
        help="exit 1 when fewer than this share of the questions pass (0..1)",
    )

    p = sub.add_parser("serve", help="serve the web app's /ws/codex protocol and /api/chat/conversations")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need NEXUS_AUTH_SECRET)"
    )
    p.add_argument("--port", type=_positive_int, default=3001, help="port (default 3001)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes (default 1); each has its own pools, all share the database",
    )

    p = sub.add_parser(
        "doctor",
        help="check the database and the configured model server (streaming, tool calls, "
        "usage, quirks); exit 0 when usable",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("mcp", help="serve psql and propose_write to MCP clients (Codex, Claude Code, VS Code)")
    p.add_argument("--http", action="store_true", help="streamable HTTP at /mcp instead of stdio")
    p.add_argument(
        "--host", default="127.0.0.1", help="with --http: address (default 127.0.0.1; others need NEXUS_AUTH_SECRET)"
    )
    p.add_argument("--port", type=_positive_int, default=3002, help="with --http: port (default 3002)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1 (0.8 is 80%), got {value:g}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except QueryError as exc:
        return _fail(exc.paragraph(), getattr(args, "json", False))
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)


if __name__ == "__main__":
    sys.exit(main())
