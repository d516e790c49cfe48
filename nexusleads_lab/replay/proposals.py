"""Proposed writes meet their cassette: the preview recorded beside the exchange, and on replay
the sentence that says a proposal would now change other rows than the recording showed."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .cassette import JSON, mask_volatile


def preview_fingerprint(preview: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """What decides which rows a proposal changes, per statement: the table, the row count, the
    sample's keys and their values before the write; for an INSERT (no rows before it) the values
    it would add, times masked (``now()`` differs on every run)."""
    out = []
    for step in preview:
        sample = step.get("sample") or []
        entry: JSON = {
            "action": step.get("action"),
            "table": step.get("table"),
            "rows": step.get("rows"),
            "keys": [row.get("key") for row in sample],
            "before": [row.get("before") for row in sample],
        }
        if step.get("action") == "insert":
            entry["after"] = [
                {k: mask_volatile(v) if isinstance(v, str) else v for k, v in (row.get("after") or {}).items()}
                for row in sample
            ]
        out.append(entry)
    return out


class ProposalLedger:
    """The previews of a cassette's proposed writes: written while recording, checked on replay.

    A replayed answer proposes the SQL the recording's model wrote, whatever the data is now; if
    that SQL would now change other rows (or rows holding other values) than the recording
    showed, the proposal is stale and must not run.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str) -> None:
        self.path = Path(path)
        self.mode = mode  # "record" | "replay"
        self._lock = threading.Lock()
        self._recorded: dict[str, list[list[JSON]]] | None = None
        self._stamp: tuple[int, int] | None = None  # the file's (mtime, size) when read: a re-recording is re-read

    def note(self, sql: str, preview: Sequence[Mapping[str, Any]]) -> str | None:
        """Record this proposal's preview, or (replaying) say in one sentence why it is stale."""
        import hashlib

        digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        fresh = preview_fingerprint(preview)
        if self.mode == "record":
            line = json.dumps({"proposal": {"sql_sha256": digest, "preview": fresh}}, ensure_ascii=False, default=str)
            with self._lock, self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            return None
        recorded = self._load().get(digest)
        if not recorded:
            return (
                f"This replayed proposal has no recorded preview in {self.path.name}, so nothing shows that it "
                "would change the rows the recording showed; re-record the cassette (see README › Re-recording "
                "notebooks) before confirming it."
            )
        # JSON round trip: the fresh preview compared as the recorded one was stored.
        fresh = json.loads(json.dumps(fresh, ensure_ascii=False, default=str))
        if any(fresh == shown for shown in recorded):
            return None
        return stale_sentence(recorded[-1], fresh)

    def _load(self) -> dict[str, list[list[JSON]]]:
        with self._lock:
            stat = self.path.stat()
            if self._recorded is None or self._stamp != (stat.st_mtime_ns, stat.st_size):
                self._stamp = (stat.st_mtime_ns, stat.st_size)
                found: dict[str, list[list[JSON]]] = {}
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    if '"proposal"' not in line:
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    proposal = entry.get("proposal") if isinstance(entry, dict) else None
                    if isinstance(proposal, dict) and proposal.get("sql_sha256"):
                        found.setdefault(str(proposal["sql_sha256"]), []).append(list(proposal.get("preview") or []))
                self._recorded = found
            return self._recorded


def stale_sentence(recorded: Sequence[Mapping[str, Any]], fresh: Sequence[Mapping[str, Any]]) -> str:
    """Why a replayed proposal may not run: what the recording showed, what it would change here."""
    from nexusleads_lab.db.demo import count_of

    several = len(recorded) > 1 or len(fresh) > 1
    for index, (shown, now) in enumerate(zip(recorded, fresh)):
        if shown == now:
            continue
        which = f"statement {index + 1} " if several else ""
        table = str(now.get("table") or shown.get("table") or "")
        if shown.get("keys") == now.get("keys") and shown.get("rows") == now.get("rows"):
            here = f"the same {_rows_of(now, table, count_of)} hold other values than it showed"
        else:
            here = f"it would change {_rows_of(now, table, count_of)}"
        return (
            f"This replayed proposal was recorded against other data: {which}showed "
            f"{_rows_of(shown, table, count_of)}; here {here}. Reset the demo data with `nexus-lab db reset` "
            "or re-record the cassette."
        )
    return (
        f"This replayed proposal was recorded against other data: it had {len(recorded)} statement(s), here "
        f"{len(fresh)}. Reset the demo data with `nexus-lab db reset` or re-record the cassette."
    )


def _rows_of(step: Mapping[str, Any], table: str, count_of) -> str:
    """'leads 14118, 447, 2', '0 rows', '1,204 leads (among them 5, 6, 7, …)'."""
    rows = int(step.get("rows") or 0)
    if rows == 0:
        return "0 rows"
    keys = [_key_text(k) for k in step.get("keys") or [] if k]
    noun = count_of(rows, table).split(" ", 1)[1]
    if not keys:
        return count_of(rows, table)
    if len(keys) >= rows:
        return f"{noun} {', '.join(keys)}"
    return f"{count_of(rows, table)} (among them {', '.join(keys)}, …)"


def _key_text(key: Any) -> str:
    if isinstance(key, Mapping):
        if len(key) == 1:
            return str(next(iter(key.values())))
        return "(" + ", ".join(f"{k}={v}" for k, v in key.items()) + ")"
    return str(key)
