"""An evaluation run as data: one item per question, the totals, and the comparison with a saved run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .suite import SuiteError

Status = Literal["passed", "failed", "error"]
COLUMNS = ["name", "question", "status", "passed", "reason", "sql", "tokens", "seconds"]


@dataclass(frozen=True)
class Item:
    """One question's outcome: ``error`` when the turn itself failed (model service, timeout)."""

    name: str
    question: str
    status: Status
    reason: str
    sql: list[str]
    tokens: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "question": self.question,
            "status": self.status,
            "passed": self.status == "passed",
            "reason": self.reason,
            "sql": list(self.sql),
            "tokens": self.tokens,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Change:
    name: str
    before: str | None  # None: the question is new since the baseline
    after: str | None  # None: the question is gone from the suite


@dataclass
class Report:
    model: str
    suite: str
    total: int  # questions in the suite; fewer items when the run was interrupted
    items: list[Item] = field(default_factory=list)
    interrupted: bool = False
    changes: list[Change] | None = None  # set by compare_with
    baseline: str | None = None

    def count(self, status: Status) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def score(self) -> float:
        """Passed questions over all questions of the suite (errors and unanswered ones count as not passed)."""
        return self.count("passed") / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "suite": self.suite,
            "total": self.total,
            "passed": self.count("passed"),
            "failed": self.count("failed"),
            "errors": self.count("error"),
            "score": round(self.score, 4),
            "complete": not self.interrupted and len(self.items) == self.total,
            "items": [item.as_dict() for item in self.items],
        }
        if self.changes is not None:
            out["baseline"] = {
                "file": self.baseline,
                "changed": [{"name": c.name, "before": c.before, "after": c.after} for c in self.changes],
            }
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per question (``COLUMNS``); the run's totals in ``attrs``."""
        frame = pd.DataFrame([item.as_dict() for item in self.items], columns=COLUMNS)
        frame.attrs.update({k: v for k, v in self.as_dict().items() if k != "items"})
        return frame

    def compare_with(self, baseline: dict[str, str], source: str, names: list[str]) -> None:
        """Note which questions changed status since ``baseline`` (name -> status of a saved run);
        ``names``: every question of this suite, so one the baseline lacks shows as new."""
        now = {item.name: item.status for item in self.items}
        changes = [Change(n, baseline.get(n), now[n]) for n in names if n in now and baseline.get(n) != now[n]]
        changes += [Change(n, status, None) for n, status in baseline.items() if n not in set(names)]
        self.changes, self.baseline = changes, source


def load_baseline(path: str | Path) -> dict[str, str]:
    """A saved run (``--out``) as name -> status; SuiteError saying what is wrong otherwise."""
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"The baseline {where} does not exist; save a run with `nexus-lab eval --out FILE`.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"The baseline {where} cannot be read: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(
            f"The baseline {where} is not JSON ({exc.msg} at line {exc.lineno}); give a file saved by "
            "`nexus-lab eval --out FILE`."
        ) from None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("name"), str) and i.get("status") in ("passed", "failed", "error")
        for i in items
    ):
        raise SuiteError(
            f"The baseline {where} is not a saved eval run (an object whose `items` each have a `name` and a "
            "`status`); give a file saved by `nexus-lab eval --out FILE`."
        )
    return {i["name"]: i["status"] for i in items}
