"""Where the front-end files (``js/*.js``, ``js/*.css``) live: inside the wheel, or in a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def asset(name: str) -> Path:
    """The path of a front-end file: ``_bundled/js`` in an installed wheel, the repository's ``js/`` otherwise."""
    for folder in (_PACKAGE / "_bundled" / "js", _PACKAGE.parent / "js"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"nexusleads-lab's front-end file {name} is missing; reinstall nexusleads-lab.")


@cache
def asset_text(name: str) -> str:
    return asset(name).read_text(encoding="utf-8")
