#!/usr/bin/env python
"""Peak memory of one hostile read, in the client (the kernel) and in its PostgreSQL backend.

    .venv/bin/python benchmarks/bench_read_memory.py [--cap-mib 256] [--out results/read_memory.md]

Each statement of ``tests/test_read_memory.py``'s HOSTILE set runs in a fresh client process as an
organization's reader of a throwaway embedded database: the client's growth is ``ru_maxrss`` after
minus before (warm: imports, connection and a first query done), the backend's is ``VmHWM`` of
its pid from ``/proc`` after minus before. The bound the product promises: the client grows by
less than 2x NEXUS_RESULT_MAX_BYTES; the backend by what the README reports from this table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cap-mib", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import test_read_memory as hostile

    from nexusleads_lab.config import Settings
    from nexusleads_lab.db import open_database
    from nexusleads_lab.db.embedded import stop_embedded

    hostile.CAP = args.cap_mib * 1024 * 1024
    mib = 1 << 20
    with tempfile.TemporaryDirectory(prefix="nexus-bench-mem-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        db = open_database(Settings(), pgdata=pgdata, contributors=3000)
        try:
            db.engine_for("acme-analytics")
            url = db.embedded.url_for(hostile.org_role_names("acme-analytics")[0])
            lines = [
                f"| statement (cap {args.cap_mib} MiB) | outcome | client peak growth (MiB) | backend peak growth (MiB) |",
                "|---|---|---:|---:|",
            ]
            for name, sql in hostile.HOSTILE.items():
                out = hostile.measure(db, url, sql)
                outcome = (
                    "refused"
                    if "error" in out and out["error"].startswith("Not run")
                    else ("error: " + out["error"][:60])
                    if "error" in out
                    else f"{out['rows']} rows, cut by {out['truncated_by'] or 'nothing'}"
                )
                lines.append(
                    f"| {name}: `{sql[:70]}` | {outcome} | {out['client'] / mib:.1f} | {out['backend'] / mib:.1f} |"
                )
                print(lines[-1], flush=True)
        finally:
            db.close()
            stop_embedded(pgdata)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
