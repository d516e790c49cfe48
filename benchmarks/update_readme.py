#!/usr/bin/env python
"""Copy benchmarks/results/*.md into README.md between the bench markers.

    .venv/bin/python benchmarks/update_readme.py [--readme PATH] [--check]

For each section (``engine``, ``rls``, ``agent``, ``browser``, ``server``) the text between

    <!-- bench:engine:start -->
    <!-- bench:engine:end -->

is replaced by ``benchmarks/results/engine.md`` (and likewise for ``rls``, ``agent``, ``browser`` and ``server``). If any marker
is missing, malformed or the results file is absent, nothing is changed: the script prints
what to add and exits with status 1. ``--check`` only reports whether README is up to date.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SECTIONS = ("engine", "read_memory", "rls", "agent", "browser", "server")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def render(readme: str, results: dict[str, str]) -> tuple[str | None, list[str]]:
    """The new README text, or None and the problems that stop the update."""
    problems: list[str] = []
    text = readme
    for name in SECTIONS:
        start, end = markers(name)
        n_start, n_end = text.count(start), text.count(end)
        if n_start != 1 or n_end != 1:
            problems.append(f"README needs exactly one {start} and one {end} (found {n_start} and {n_end})")
            continue
        i, j = text.index(start), text.index(end)
        if j < i:
            problems.append(f"{end} comes before {start}")
            continue
        if name not in results:
            problems.append(f"benchmarks/results/{name}.md is missing: run benchmarks/run_all.py first")
            continue
        body = results[name].strip("\n")
        text = text[: i + len(start)] + "\n" + body + "\n" + text[j:]
    return (None if problems else text), problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Copy benchmark results into README.md")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    ap.add_argument("--check", action="store_true", help="exit 1 if README differs from the results; change nothing")
    args = ap.parse_args(argv)

    if not args.readme.exists():
        print(f"{args.readme} does not exist; nothing changed.", file=sys.stderr)
        return 1
    readme = args.readme.read_text(encoding="utf-8")
    results = {}
    for name in SECTIONS:
        path = args.results / f"{name}.md"
        if path.exists():
            results[name] = path.read_text(encoding="utf-8")
    new, problems = render(readme, results)
    if new is None:
        print(f"{args.readme}: nothing changed.", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        if any("README needs" in pr or "comes before" in pr for pr in problems):
            print(
                "\nAdd these lines where the results should appear (for example under a '## Benchmarks' heading):\n",
                file=sys.stderr,
            )
            for name in SECTIONS:
                start, end = markers(name)
                print(f"{start}\n{end}\n", file=sys.stderr)
        return 1
    if new == readme:
        print(f"{args.readme}: already up to date.")
        return 0
    if args.check:
        print(f"{args.readme}: out of date; run benchmarks/update_readme.py.")
        return 1
    tmp = args.readme.with_name(args.readme.name + ".bench.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, args.readme)
    print(f"{args.readme}: updated the {', '.join(SECTIONS)} benchmark sections.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
