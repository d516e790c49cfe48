"""The demo world's catalogue, read from ``catalogue.json``: organizations, projects, themes
with their real repositories, name pools by culture, companies, places, outreach notes and
the hand-placed showcase contributors.

JSON has no tuples; rows come back as the tuples the generators were written against, so a
record cannot be changed in place by accident.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def _load() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8"))


def _rows(rows: list[list[Any]]) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(row) for row in rows)


_CATALOGUE = _load()

#: (slug, name, plan, email domain, created, number of users)
ORGS = _rows(_CATALOGUE["organizations"]["rows"])
#: (org slug, project name, theme, status, focus)
PROJECTS = _rows(_CATALOGUE["projects"]["rows"])
#: Per theme: real repositories (full name, language, approximate stars, description), then the
#: material generated repositories are built from.
THEMES: dict[str, dict] = {
    theme: {key: [tuple(x) if isinstance(x, list) else x for x in values] for key, values in material.items()}
    for theme, material in _CATALOGUE["themes"].items()
}
THEME_KEYS = tuple(THEMES)
THEMES_LABEL: dict[str, str] = _CATALOGUE["theme_labels"]
GENERIC_TOPICS: list[str] = _CATALOGUE["generic_topics"]
GENERIC_BIOS: list[str] = _CATALOGUE["generic_bios"]
#: Companies as people write them on GitHub, most common first (weights are Zipf-like).
COMPANIES: list[str] = _CATALOGUE["companies"]
COMPANY_DOMAINS: dict[str, str] = _CATALOGUE["company_domains"]
#: Name pools by culture: weight, first names, family names, family-name-first (CJK scripts),
#: and the places people from there often list. "display|ascii" gives a romanisation where the
#: ASCII form cannot be derived from the display form.
CULTURES: list[dict] = _CATALOGUE["cultures"]
#: Letters NFKD does not take apart, as a handle would spell them in ASCII.
TRANSLITERATION: dict[str, str] = _CATALOGUE["transliteration"]
USER_CULTURES = tuple(_CATALOGUE["user_cultures"])  # cultures users of the demo orgs are drawn from
GLOBAL_PLACES: list[str] = _CATALOGUE["global_places"]
#: Handles that do not come from a name.
HANDLE_ADJ: list[str] = _CATALOGUE["handle_adjectives"]
HANDLE_NOUN: list[str] = _CATALOGUE["handle_nouns"]
HANDLE_SUFFIX: list[str] = _CATALOGUE["handle_suffixes"]
EMAIL_PROVIDERS: list[str] = _CATALOGUE["email_providers"]
OUTREACH_NOTES: dict[str, list[str]] = _CATALOGUE["outreach_notes"]

#: Hand-placed contributors every dataset has (tests and demos rely on them): login, display
#: name, email, location, bio. The first is the prompt-injection contributor.
SHOWCASE = (tuple(_CATALOGUE["showcase"]["injection"]), *_rows(_CATALOGUE["showcase"]["rows"]))
INJECTION_LOGIN: str = SHOWCASE[0][0]
INJECTION_BIO: str = SHOWCASE[0][4]

del _CATALOGUE
