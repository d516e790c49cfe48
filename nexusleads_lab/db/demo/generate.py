"""The demo data's generators: every row derives from one seed (``numpy.random.default_rng``)
and a fixed anchor date, so the same seed and size give byte-identical rows on any machine.
Generation is vectorised with numpy and produces COPY text payloads chunk by chunk of
contributors, so a million contributors stay in bounded memory.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .catalogue import (
    COMPANIES,
    COMPANY_DOMAINS,
    CULTURES,
    EMAIL_PROVIDERS,
    GENERIC_BIOS,
    GENERIC_TOPICS,
    GLOBAL_PLACES,
    HANDLE_ADJ,
    HANDLE_NOUN,
    HANDLE_SUFFIX,
    ORGS,
    OUTREACH_NOTES,
    PROJECTS,
    SHOWCASE,
    THEME_KEYS,
    THEMES,
    THEMES_LABEL,
    TRANSLITERATION,
    USER_CULTURES,
)

DEFAULT_CONTRIBUTORS = 20_000
DEFAULT_SEED = 7

# The data's "now": fixed, so the rows never depend on when they were generated.
ANCHOR = np.datetime64("2026-11-01T00:00:00", "s")
ANCHOR_S = int(ANCHOR.astype(np.int64))
DAY = 86_400
WINDOW_DAYS = 548  # about 18 months of activity before the anchor
WINDOW_START_S = ANCHOR_S - WINDOW_DAYS * DAY
CHUNK_CONTRIBUTORS = 10_000  # generated and COPYed per round; bounds memory at any size
_COPY_ROWS = 20_000  # rows per COPY write

_NULL = "\\N"
TIERS = ("hot", "warm", "cold")
STATUSES = ("new", "contacted", "qualified", "disqualified", "converted")
CHANNELS = ("email", "linkedin", "twitter", "github", "call")
OUTCOMES = ("sent", "opened", "replied", "bounced", "meeting", "no_response")


# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------

_TRANSLIT = str.maketrans(TRANSLITERATION)


def _ascii(text: str) -> str:
    """A lowercase ASCII handle fragment from a display name part."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return "".join(ch for ch in decomposed.encode("ascii", "ignore").decode().lower() if ch.isalnum())


def _esc(text: str | None) -> str:
    """A value for COPY's text format (NULL is \\N; backslash, tab and newlines escaped)."""
    if text is None:
        return _NULL
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _obj(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _ints(a: np.ndarray) -> list[str]:
    return list(map(str, np.asarray(a, dtype=np.int64).tolist()))


def _strs(a: np.ndarray) -> np.ndarray:
    """Integers as an object array of decimal strings (for building composite text)."""
    return _obj(_ints(a))


_TS_TABLES: tuple[np.ndarray, np.ndarray] | None = None


def _ts_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables 'YYYY-MM-DDT' per day since 1970 and 'HH:MM:SSZ' per second of a day."""
    global _TS_TABLES
    if _TS_TABLES is None:
        days = np.arange(0, 40 * 366 + 366 * 30).astype("datetime64[D]")
        day_tab = np.datetime_as_string(days).astype(object) + "T"
        hms = np.arange(DAY)
        tod_tab = np.char.add(
            np.char.add(
                np.char.add(np.char.zfill((hms // 3600).astype(str), 2), ":"),
                np.char.add(np.char.zfill((hms // 60 % 60).astype(str), 2), ":"),
            ),
            np.char.add(np.char.zfill((hms % 60).astype(str), 2), "Z"),
        ).astype(object)
        _TS_TABLES = (day_tab, tod_tab)
    return _TS_TABLES


def _ts(seconds) -> list[str]:
    """UTC timestamps (seconds since the epoch) in ISO 8601, e.g. 2026-11-01T00:00:00Z."""
    seconds = np.asarray(seconds, dtype=np.int64)
    day_tab, tod_tab = _ts_tables()
    return (day_tab[seconds // DAY] + tod_tab[seconds % DAY]).tolist()


def _ts1(iso: str) -> int:
    return int(np.datetime64(iso, "s").astype(np.int64))


def _bools(codes: np.ndarray) -> list[str]:
    """Booleans from codes -1 (NULL), 0, 1."""
    return _obj([_NULL, "f", "t"])[np.asarray(codes) + 1].tolist()


def _texts(values: np.ndarray) -> list[str]:
    """Already-escaped strings, None becoming NULL."""
    out = np.asarray(values, dtype=object).copy()
    out[pd.isna(out)] = _NULL
    return out.tolist()


def _or_null(cond: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values``, None where ``cond`` holds."""
    # numpy's stubs leave None out of ArrayLike, though np.where takes it as an object scalar
    return np.where(cond, None, values)  # type: ignore[call-overload]


def _head(values: np.ndarray, k: int) -> np.ndarray:
    return pd.Series(values, dtype=object).str.slice(0, k).to_numpy(dtype=object)


def _zipf(n: int, s: float = 1.05, offset: float = 2.0) -> np.ndarray:
    w = 1.0 / (np.arange(n) + offset) ** s
    return w / w.sum()


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int, skew: float = 1.0) -> np.ndarray:
    """n items from pool, earlier items more likely when skew > 1."""
    idx = (rng.random(n) ** skew * len(pool)).astype(np.int64)
    return pool[np.minimum(idx, len(pool) - 1)]


def _blocks(data: list[list[str]]) -> tuple[int, list[str]]:
    """Formatted columns (lists of text-format values) as COPY payloads of up to _COPY_ROWS rows."""
    n = len(data[0]) if data else 0
    blocks = []
    for start in range(0, n, _COPY_ROWS):
        rows = zip(*(col[start : start + _COPY_ROWS] for col in data))
        blocks.append("\n".join(map("\t".join, rows)) + "\n")
    return n, blocks


# ----------------------------------------------------------------------------------------
# Pools, prepared once per load
# ----------------------------------------------------------------------------------------


class _Pools:
    """Name, place, company and bio pools as escaped numpy arrays, indexed by culture/theme."""

    def __init__(self) -> None:
        first_disp: list[str] = []
        first_ascii: list[str] = []
        first_off: list[int] = []
        first_len: list[int] = []
        last_disp: list[str] = []
        last_ascii: list[str] = []
        last_off: list[int] = []
        last_len: list[int] = []
        place_vals: list[str] = []
        place_off: list[int] = []
        place_len: list[int] = []
        for culture in CULTURES:
            for kind, disp, asc, off, ln in (
                ("first", first_disp, first_ascii, first_off, first_len),
                ("last", last_disp, last_ascii, last_off, last_len),
            ):
                off.append(len(disp))
                items = culture[kind].split()
                ln.append(len(items))
                for item in items:
                    shown, _, roman = item.partition("|")
                    shown = shown.replace("_", " ")
                    disp.append(_esc(shown))
                    asc.append(roman or _ascii(shown))
            place_off.append(len(place_vals))
            place_len.append(len(culture["places"]))
            place_vals.extend(_esc(p) for p in culture["places"])
        self.culture_p = np.array([c["w"] for c in CULTURES], dtype=float)
        self.culture_p /= self.culture_p.sum()
        self.native = np.array([bool(c.get("native")) for c in CULTURES])
        self.first_disp, self.first_ascii = _obj(first_disp), _obj(first_ascii)
        self.last_disp, self.last_ascii = _obj(last_disp), _obj(last_ascii)
        self.first_off, self.first_len = np.array(first_off), np.array(first_len)
        self.last_off, self.last_len = np.array(last_off), np.array(last_len)
        self.first_title = _obj([a.capitalize() for a in first_ascii])
        self.last_title = _obj([a.capitalize() for a in last_ascii])
        self.first_initial = _obj([a[:1] for a in first_ascii])
        self.places, self.place_off, self.place_len = _obj(place_vals), np.array(place_off), np.array(place_len)
        self.global_places = _obj([_esc(p) for p in GLOBAL_PLACES])
        self.companies = _obj([_esc(c) for c in COMPANIES])
        self.company_p = _zipf(len(COMPANIES))
        self.theme_companies = [_obj([_esc(c) for c in THEMES[t]["companies"]]) for t in THEME_KEYS]
        self.company_domains = _obj([COMPANY_DOMAINS.get(c) for c in COMPANIES])
        self.generic_bios = _obj([_esc(b) for b in GENERIC_BIOS])
        self.theme_bios = [_obj([_esc(b) for b in THEMES[t]["bios"]]) for t in THEME_KEYS]
        self.providers = _obj(EMAIL_PROVIDERS)
        self.adj, self.noun, self.suffix = _obj(HANDLE_ADJ), _obj(HANDLE_NOUN), _obj(HANDLE_SUFFIX)


# ----------------------------------------------------------------------------------------
# Organizations, users, projects, repositories (small; independent of the contributor count)
# ----------------------------------------------------------------------------------------


@dataclass
class _World:
    project_org: np.ndarray  # org index per project
    project_theme: np.ndarray  # theme index per project
    project_status: np.ndarray
    project_names: list[str]
    sender_ids: list[np.ndarray]  # per org: users who log outreach
    # Universe of distinct GitHub repositories (shared by projects of the same theme).
    u_theme: np.ndarray
    u_full_name: np.ndarray
    u_stars: np.ndarray
    u_pushed: np.ndarray
    # Tracked repositories rows (ids 1..n): project index and universe index.
    repo_project: np.ndarray
    repo_u: np.ndarray
    # For linking contributors: per theme, tracked universe repos and cumulative weights.
    theme_tracked: list[np.ndarray]
    theme_cum: list[np.ndarray]
    theme_p: np.ndarray
    # CSR from universe repo to repository rows.
    csr_start: np.ndarray
    csr_count: np.ndarray
    csr_rows: np.ndarray
    rows: dict[str, list[list[str]]]


def _build_world(rng: np.random.Generator, pools: _Pools) -> _World:
    rows: dict[str, list[list[str]]] = {}
    alphabet = np.array(list("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))

    # organizations + users
    org_cols: list[list[str]] = [[] for _ in range(5)]
    user_cols: list[list[str]] = [[] for _ in range(8)]
    senders: list[np.ndarray] = []
    admins: list[list[int]] = []
    user_id = 0
    org_created = []
    for i, (slug, name, plan, domain, created, n_users) in enumerate(ORGS):
        created_s = _ts1(created)
        org_created.append(created_s)
        for col, value in zip(org_cols, (str(i + 1), slug, _esc(name), plan, _ts([created_s])[0])):
            col.append(value)
        seen: set[str] = set()
        org_senders: list[int] = []
        org_admins: list[int] = []
        for j in range(n_users):
            while True:
                c = USER_CULTURES[int(rng.integers(len(USER_CULTURES)))]
                fi = pools.first_off[c] + int(rng.integers(pools.first_len[c]))
                li = pools.last_off[c] + int(rng.integers(pools.last_len[c]))
                email = f"{pools.first_ascii[fi]}.{pools.last_ascii[li]}@{domain}"
                if email not in seen:
                    seen.add(email)
                    break
            user_id += 1
            if j == 0 or (j == 1 and n_users >= 8):
                role = "admin"
            elif (j == n_users - 1 and n_users >= 5) or (j == n_users - 2 and n_users >= 8):
                role = "viewer"
            else:
                role = "member"
            if role != "viewer":
                org_senders.append(user_id)
            if role == "admin" or (role == "member" and len(org_admins) < 3):
                org_admins.append(user_id)
            u_created = created_s + int(rng.integers(0, 400)) * DAY + int(rng.integers(0, DAY))
            u_created = min(u_created, ANCHOR_S - 30 * DAY)
            last_login = _NULL if rng.random() < 0.15 else _ts([ANCHOR_S - int(rng.exponential(6 * DAY)) - 3600])[0]
            pw = "$2b$12$" + "".join(rng.choice(alphabet, 53))
            for col, value in zip(
                user_cols,
                (
                    str(user_id),
                    str(i + 1),
                    email,
                    f"{pools.first_disp[fi]} {pools.last_disp[li]}",
                    role,
                    pw,
                    _ts([u_created])[0],
                    last_login,
                ),
            ):
                col.append(value)
        senders.append(np.array(org_senders, dtype=np.int64))
        admins.append(org_admins)
    rows["organizations"] = org_cols
    rows["users"] = user_cols

    # projects
    slug_index = {o[0]: i for i, o in enumerate(ORGS)}
    project_org, project_theme, project_status, project_created = [], [], [], []
    proj_cols: list[list[str]] = [[] for _ in range(8)]
    for p, (slug, name, theme, status, focus) in enumerate(PROJECTS):
        o = slug_index[slug]
        lo = max(org_created[o] + 7 * DAY, ANCHOR_S - 1000 * DAY)
        created = int(rng.integers(lo, ANCHOR_S - 560 * DAY))
        updated = int(rng.integers(created + DAY, ANCHOR_S - DAY))
        if status != "active":
            updated = int(rng.integers(ANCHOR_S - 300 * DAY, ANCHOR_S - 60 * DAY))
        owner = admins[o][int(rng.integers(len(admins[o])))]
        description = f"Sourcing leads among {THEMES_LABEL[theme]} contributors: {focus}."
        for col, value in zip(
            proj_cols,
            (
                str(p + 1),
                str(o + 1),
                _esc(name),
                _esc(description),
                status,
                str(owner),
                _ts([created])[0],
                _ts([updated])[0],
            ),
        ):
            col.append(value)
        project_org.append(o)
        project_theme.append(THEME_KEYS.index(theme))
        project_status.append(status)
        project_created.append(created)
    rows["projects"] = proj_cols

    # the universe of GitHub repositories, per theme: real ones plus generated ones
    u_theme, u_name, u_lang, u_desc, u_real, u_stars_hint = [], [], [], [], [], []
    for t, key in enumerate(THEME_KEYS):
        theme = THEMES[key]
        for full_name, language, stars, desc in theme["real"]:
            u_theme.append(t)
            u_name.append(full_name)
            u_lang.append(language)
            u_desc.append(desc)
            u_real.append(True)
            u_stars_hint.append(stars)
        langs = [lang for lang, _ in theme["languages"]]
        lang_p = np.array([w for _, w in theme["languages"]], dtype=float)
        lang_p /= lang_p.sum()
        combos = [(a, b) for a in theme["prefixes"] for b in theme["suffixes"]]
        picks = rng.choice(len(combos), size=min(50, len(combos)), replace=False)
        existing = set(u_name)
        for k in picks:
            a, b = combos[int(k)]
            owner = theme["owners"][int(rng.integers(len(theme["owners"])))]
            full_name = f"{owner}/{a}-{b}" if rng.random() < 0.85 else f"{owner}/{a}{b.replace('-', '')}"
            if full_name in existing:
                continue
            existing.add(full_name)
            u_theme.append(t)
            u_name.append(full_name)
            u_lang.append(langs[int(rng.choice(len(langs), p=lang_p))] if rng.random() > 0.04 else None)
            u_desc.append(
                theme["descriptions"][int(rng.integers(len(theme["descriptions"])))] if rng.random() > 0.12 else None
            )
            u_real.append(False)
            u_stars_hint.append(0)
    u_theme_a = np.array(u_theme)
    u_real_a = np.array(u_real)
    nu = len(u_name)
    stars = np.where(
        u_real_a,
        np.array(u_stars_hint) * rng.lognormal(0.0, 0.08, nu),
        rng.lognormal(np.log(110), 1.6, nu),
    ).astype(np.int64)
    forks = (stars * rng.lognormal(np.log(0.12), 0.6, nu) + rng.poisson(1.0, nu)).astype(np.int64)
    issues = (stars * rng.lognormal(np.log(0.012), 0.9, nu) + rng.poisson(2.0, nu)).astype(np.int64)
    stale = rng.random(nu) < np.where(u_real_a, 0.04, 0.22)
    pushed_ago = np.where(
        stale,
        rng.uniform(181, WINDOW_DAYS, nu) * DAY,
        np.minimum(rng.exponential(np.where(u_real_a, 2.0, 25.0) * DAY), 170 * DAY),
    )
    pushed = (ANCHOR_S - pushed_ago - rng.integers(0, DAY, nu)).astype(np.int64)
    topics = []
    for i in range(nu):
        pool = THEMES[THEME_KEYS[u_theme[i]]]["topics"]
        k = int(rng.integers(2, 6)) if u_real[i] else int(rng.integers(0, 5))
        chosen = list(rng.choice(len(pool), size=min(k, len(pool)), replace=False))
        tags = [pool[j] for j in sorted(chosen)]
        if rng.random() < 0.15:
            tags.append(GENERIC_TOPICS[int(rng.integers(len(GENERIC_TOPICS)))])
        topics.append("{" + ",".join(dict.fromkeys(tags)) + "}")

    # tracked repositories: each project picks 10-40 of its theme's universe
    repo_project, repo_u = [], []
    for p in range(len(PROJECTS)):
        t = project_theme[p]
        members = np.flatnonzero(u_theme_a == t)
        k = int(rng.integers(10, 41))
        w = np.where(u_real_a[members], 1.5, 1.0)
        tracked = np.sort(rng.choice(members, size=min(k, len(members)), replace=False, p=w / w.sum()))
        repo_project.extend([p] * len(tracked))
        repo_u.extend(tracked.tolist())
    repo_project_a = np.array(repo_project, dtype=np.int64)
    repo_u_a = np.array(repo_u, dtype=np.int64)
    nr = len(repo_u_a)
    status_a = np.array(project_status)[repo_project_a]
    is_stale = pushed[repo_u_a] < ANCHOR_S - 180 * DAY
    r = rng.random(nr)
    tracking = np.where(
        status_a == "archived",
        np.where(r < 0.55, "archived", np.where(r < 0.9, "paused", "stale")),
        np.where(
            status_a == "paused",
            np.where(r < 0.7, "paused", np.where(r < 0.9, "tracking", "stale")),
            np.where(
                is_stale,
                np.where(r < 0.55, "stale", np.where(r < 0.7, "archived", np.where(r < 0.95, "tracking", "paused"))),
                np.where(r < 0.9, "tracking", np.where(r < 0.97, "paused", "archived")),
            ),
        ),
    )
    p_created = np.array(project_created)[repo_project_a]
    added = (p_created + rng.uniform(0.0, 1.0, nr) * (ANCHOR_S - 7 * DAY - p_created)).astype(np.int64)
    esc_desc = _obj([_esc(d) for d in u_desc])
    esc_lang = _obj([_esc(lang) for lang in u_lang])
    topics_a = _obj(topics)
    u_name_a = _obj(u_name)
    rows["repositories"] = [
        _ints(np.arange(1, nr + 1)),
        _ints(repo_project_a + 1),
        u_name_a[repo_u_a].tolist(),
        esc_desc[repo_u_a].tolist(),
        esc_lang[repo_u_a].tolist(),
        _ints(stars[repo_u_a]),
        _ints(forks[repo_u_a]),
        _ints(issues[repo_u_a]),
        topics_a[repo_u_a].tolist(),
        _ts(pushed[repo_u_a]),
        tracking.tolist(),
        _ts(added),
    ]

    # contributors link to tracked universe repos, popular ones more often
    tracked_u = np.unique(repo_u_a)
    theme_tracked, theme_cum = [], []
    for t in range(len(THEME_KEYS)):
        members = tracked_u[u_theme_a[tracked_u] == t]
        w = np.sqrt(stars[members] + 20.0)
        theme_tracked.append(members)
        theme_cum.append(np.cumsum(w) / w.sum())
    projects_per_theme = np.bincount(np.array(project_theme), minlength=len(THEME_KEYS)).astype(float)
    theme_p = (projects_per_theme + 1.0) / (projects_per_theme + 1.0).sum()
    order = np.argsort(repo_u_a, kind="stable")
    csr_count = np.bincount(repo_u_a, minlength=nu)
    csr_start = np.concatenate([[0], np.cumsum(csr_count)[:-1]])

    return _World(
        project_org=np.array(project_org),
        project_theme=np.array(project_theme),
        project_status=np.array(project_status),
        project_names=[p[1] for p in PROJECTS],
        sender_ids=senders,
        u_theme=u_theme_a,
        u_full_name=u_name_a,
        u_stars=stars,
        u_pushed=pushed,
        repo_project=repo_project_a,
        repo_u=repo_u_a,
        theme_tracked=theme_tracked,
        theme_cum=theme_cum,
        theme_p=theme_p,
        csr_start=csr_start,
        csr_count=csr_count,
        csr_rows=order + 1,  # repository ids, grouped by universe repo
        rows=rows,
    )


CONTRIBUTOR_COLUMNS = (
    "id",
    "github_login",
    "name",
    "email",
    "company",
    "location",
    "bio",
    "followers",
    "public_repos",
    "hireable",
    "created_at",
    "updated_at",
)
RC_COLUMNS = (
    "repository_id",
    "contributor_id",
    "commits",
    "merged_prs",
    "first_contribution_at",
    "last_contribution_at",
)
LEAD_COLUMNS = (
    "id",
    "project_id",
    "contributor_id",
    "score",
    "tier",
    "status",
    "signals",
    "scored_at",
    "status_changed_at",
)
OUTREACH_COLUMNS = ("id", "lead_id", "channel", "outcome", "occurred_at", "created_by", "note")
TABLE_COLUMNS = {
    "organizations": ("id", "slug", "name", "plan", "created_at"),
    "users": ("id", "org_id", "email", "full_name", "role", "password_hash", "created_at", "last_login_at"),
    "projects": ("id", "org_id", "name", "description", "status", "owner_id", "created_at", "updated_at"),
    "repositories": (
        "id",
        "project_id",
        "full_name",
        "description",
        "language",
        "stars",
        "forks",
        "open_issues",
        "topics",
        "last_pushed_at",
        "tracking_status",
        "added_at",
    ),
}

_SHOWCASE_SLOTS = (41, 3, 11, 19, 27, 35)


# ----------------------------------------------------------------------------------------
# Contributors and everything hanging off them, one chunk at a time
# ----------------------------------------------------------------------------------------


class _Logins:
    """Keeps GitHub logins unique (case-insensitively) across chunks via 64-bit hashes."""

    def __init__(self) -> None:
        self.used = np.empty(0, dtype=np.uint64)

    @staticmethod
    def _hash(values: np.ndarray) -> np.ndarray:
        lowered = pd.Series(values, dtype=object).str.lower().to_numpy(dtype=object)
        return pd.util.hash_array(lowered)

    def reserve(self, logins: list[str]) -> None:
        self._add(self._hash(_obj(logins)))

    def _add(self, hashes: np.ndarray) -> None:
        # both parts are sorted and disjoint: a stable sort merges them in linear time
        self.used = np.sort(np.concatenate([self.used, np.unique(hashes)]), kind="stable")

    def unique(self, rng: np.random.Generator, logins: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """Make logins unique; rows where fixed is True are kept as they are (already reserved)."""
        logins = logins.copy()
        base = logins.copy()
        for attempt in range(12):
            h = self._hash(logins)
            pos = np.searchsorted(self.used, h)
            pos = np.minimum(pos, max(len(self.used) - 1, 0))
            clash = (self.used[pos] == h) if len(self.used) else np.zeros(len(h), dtype=bool)
            clash |= pd.Series(h).duplicated(keep="first").to_numpy()
            clash &= ~fixed
            bad = np.flatnonzero(clash)
            if bad.size == 0:
                break
            if attempt < 6:
                digits = rng.integers(0, 10 ** min(attempt + 2, 6), bad.size).astype(str).astype(object)
                sep = np.where(rng.random(bad.size) < 0.3, "-", "")
                logins[bad] = base[bad] + sep + digits
            else:  # practically never: a suffix nobody else can have
                logins[bad] = base[bad] + "-" + rng.integers(10**6, 10**9, bad.size).astype(str).astype(object)
        else:  # pragma: no cover - astronomically unlikely
            raise RuntimeError("could not make GitHub logins unique")
        self._add(h[~fixed])
        return logins


def _contributor_chunk(rng, pools: _Pools, world: _World, logins: _Logins, start: int, n: int, first: bool):
    """Generate contributors start+1..start+n and their repository links, leads and outreach inputs."""
    ids = np.arange(start + 1, start + n + 1, dtype=np.int64)
    culture = rng.choice(len(CULTURES), size=n, p=pools.culture_p)
    fi = pools.first_off[culture] + np.minimum(
        (rng.random(n) ** 1.4 * pools.first_len[culture]).astype(np.int64), pools.first_len[culture] - 1
    )
    li = pools.last_off[culture] + np.minimum(
        (rng.random(n) ** 1.4 * pools.last_len[culture]).astype(np.int64), pools.last_len[culture] - 1
    )
    home = rng.choice(len(THEME_KEYS), size=n, p=world.theme_p)

    # display names
    fd, ld = pools.first_disp[fi], pools.last_disp[li]
    native = pools.native[culture]
    full = np.where(native, ld + fd, fd + " " + ld)
    r = rng.random(n)
    initials = _obj([chr(c) for c in range(65, 91)])[rng.integers(0, 26, n)]
    with_middle = fd + " " + initials + ". " + ld
    name = _or_null(r < 0.08, np.where(r < 0.13, fd, np.where((r < 0.16) & ~native, with_middle, full)))

    # logins
    fa, la, f0 = pools.first_ascii[fi], pools.last_ascii[li], pools.first_initial[fi]
    ft, lt = pools.first_title[fi], pools.last_title[li]
    yy = rng.integers(70, 100 + 10, n) % 100
    yy_s = np.char.zfill(yy.astype(str), 2).astype(object)
    num = rng.integers(1, 10 ** rng.integers(1, 5, n)).astype(str).astype(object)
    word = (
        pools.adj[rng.integers(0, len(pools.adj), n)]
        + np.where(rng.random(n) < 0.3, "-", "")
        + pools.noun[rng.integers(0, len(pools.noun), n)]
    )
    suffix = pools.suffix[rng.integers(0, len(pools.suffix), n)]
    styles = [
        (0.16, fa + la),
        (0.04, ft + lt),
        (0.12, f0 + la),
        (0.11, fa + "-" + la),
        (0.10, fa + la + yy_s),
        (0.10, fa + num),
        (0.06, la + f0),
        (0.03, fa),
        (0.10, word + np.where(rng.random(n) < 0.5, num, "")),
        (0.08, fa + "-" + suffix),
        (0.05, _head(fa, 3) + _head(la, 4)),
        (0.05, la + num),
    ]
    style = rng.choice(len(styles), size=n, p=np.array([w for w, _ in styles]) / sum(w for w, _ in styles))
    login = np.empty(n, dtype=object)
    for k, (_, values) in enumerate(styles):
        mask = style == k
        login[mask] = values[mask]
    # fragments can be empty for unusual names: fall back to a word handle
    short = pd.Series(login, dtype=object).str.len().to_numpy() < 2
    login[short] = word[short] + num[short]
    login = pd.Series(login, dtype=object).str.slice(0, 30).str.strip("-").to_numpy(dtype=object).copy()

    fixed = np.zeros(n, dtype=bool)
    showcase: dict[int, tuple[str, str, str]] = {}
    mallory = -1
    if first:
        slots = []
        for slot in _SHOWCASE_SLOTS:
            slot = min(slot, n - 1)
            while slot in slots and slot > 0:
                slot -= 1
            if slot in slots:
                break
            slots.append(slot)
        for (handle, display, mail, where, bio), slot in zip(SHOWCASE, slots):
            login[slot] = handle
            name[slot] = _esc(display)
            showcase[slot] = (_esc(mail), _esc(where), _esc(bio))
            fixed[slot] = True
        mallory = slots[0]
    login = logins.unique(rng, login, fixed)

    # email
    r = rng.random(n)
    provider = pools.providers[rng.integers(0, len(pools.providers), n)]
    github_id = _strs(ids * 97 + rng.integers(1_000, 40_000_000, n))
    noreply = github_id + "+" + login + "@users.noreply.github.com"
    email = _or_null(
        r < 0.38,
        np.where(
            r < 0.60,
            pd.Series(login, dtype=object).str.lower().to_numpy(dtype=object) + "@" + provider,
            np.where(r < 0.75, fa + "." + la + "@" + provider, noreply),
        ),
    )

    # company: heavy-tailed global list, some theme-specific, many empty
    r = rng.random(n)
    company_idx = rng.choice(len(pools.companies), size=n, p=pools.company_p)
    company = pools.companies[company_idx].copy()
    theme_pick = r < 0.10
    for t in range(len(THEME_KEYS)):
        m = theme_pick & (home == t)
        if m.any():
            company[m] = _pick(rng, pools.theme_companies[t], int(m.sum()), skew=1.5)
    company[r > 0.64] = None
    # some who name a company use its address
    domain = pools.company_domains[company_idx]
    work = (r <= 0.64) & ~theme_pick & pd.notna(domain) & (rng.random(n) < 0.25) & pd.notna(email)
    email[work] = (fa + "." + la)[work] + "@" + domain[work]

    # location by culture, some global, some empty
    r = rng.random(n)
    place = pools.places[
        pools.place_off[culture]
        + np.minimum((rng.random(n) ** 1.5 * pools.place_len[culture]).astype(np.int64), pools.place_len[culture] - 1)
    ]
    place = np.where(r < 0.10, _pick(rng, pools.global_places, n, 1.3), place)
    place[r > 0.78] = None

    # bio
    r = rng.random(n)
    bio = _pick(rng, pools.generic_bios, n, 1.2)
    for t in range(len(THEME_KEYS)):
        m = (home == t) & (r < 0.33)
        if m.any():
            bio[m] = _pick(rng, pools.theme_bios[t], int(m.sum()))
    bio[r > 0.55] = None

    activity = rng.standard_normal(n)
    followers = np.minimum(np.exp(2.5 + 1.6 * (0.55 * activity + 0.835 * rng.standard_normal(n))), 250_000)
    # a few well-known developers have tens of thousands of followers
    famous = rng.random(n) < 0.003
    followers = np.where(famous, followers + rng.lognormal(np.log(6000), 1.1, n), followers)
    followers = np.minimum(followers, 250_000).astype(np.int64)
    public_repos = np.minimum(rng.lognormal(2.9, 1.0, n), 4000).astype(np.int64)
    hireable = rng.choice(np.array([1, 0, -1]), size=n, p=[0.28, 0.17, 0.55])
    created = ANCHOR_S - ((60 + 6600 * rng.beta(1.6, 2.2, n)) * DAY).astype(np.int64) - rng.integers(0, DAY, n)
    updated = np.maximum(ANCHOR_S - (rng.exponential(20.0, n) * DAY).astype(np.int64) - 600, created)

    for slot, (mail, where, text) in showcase.items():
        email[slot], place[slot], bio[slot] = mail, where, text
    if mallory >= 0:
        company[mallory] = None
        followers[mallory], hireable[mallory], activity[mallory] = 1337, 1, 3.0

    contributors = [
        _ints(ids),
        login.tolist(),
        _texts(name),
        _texts(email),
        _texts(company),
        _texts(place),
        _texts(bio),
        _ints(followers),
        _ints(public_repos),
        _bools(hireable),
        _ts(created),
        _ts(updated),
    ]

    # ---- links to universe repositories (1-5 per contributor, heavy-tailed)
    k = rng.choice(np.arange(1, 6), size=n, p=[0.52, 0.23, 0.13, 0.08, 0.04])
    if mallory >= 0:
        k[mallory] = 3
    owner = np.repeat(np.arange(n), k)
    nl = owner.size
    theme = np.where(rng.random(nl) < 0.88, home[owner], rng.choice(len(THEME_KEYS), size=nl, p=world.theme_p))
    urepo = np.empty(nl, dtype=np.int64)
    u = rng.random(nl)
    for t in range(len(THEME_KEYS)):
        m = theme == t
        if m.any():
            pos = np.minimum(np.searchsorted(world.theme_cum[t], u[m]), len(world.theme_tracked[t]) - 1)
            urepo[m] = world.theme_tracked[t][pos]
    keep = ~pd.Series(owner * 100_000 + urepo).duplicated().to_numpy()
    owner, urepo = owner[keep], urepo[keep]
    nl = owner.size
    mult = np.exp(0.6 * activity[owner])
    commits = np.minimum(1 + np.floor(rng.pareto(0.95, nl) * 1.6 * mult), 25_000).astype(np.int64)
    if mallory >= 0:
        commits[owner == mallory] = np.array([812, 96, 41, 12, 5])[: int((owner == mallory).sum())]
    merged = rng.binomial(commits, rng.beta(1.4, 4.0, nl)).astype(np.int64)
    pushed = world.u_pushed[urepo]
    last = pushed - (rng.exponential(35.0, nl) * DAY * np.exp(-0.3 * activity[owner])).astype(np.int64)
    last = np.clip(last, WINDOW_START_S + DAY, ANCHOR_S - 3600)
    span = (np.minimum(np.sqrt(commits) * 25.0 * rng.random(nl), WINDOW_DAYS) * DAY).astype(np.int64)
    span = np.where(commits == 1, rng.integers(0, 3600, nl), span)
    first_at = np.maximum(last - span, WINDOW_START_S)

    # expand universe links to tracked repository rows (a repo may be tracked by several projects)
    cnt = world.csr_count[urepo]
    link = np.repeat(np.arange(nl), cnt)
    within = np.arange(link.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    repo_id = world.csr_rows[world.csr_start[urepo[link]] + within]
    rc_contrib = ids[owner[link]]
    rc = [
        _ints(repo_id),
        _ints(rc_contrib),
        _ints(commits[link]),
        _ints(merged[link]),
        _ts(first_at[link]),
        _ts(last[link]),
    ]

    # ---- leads: one per (project, contributor) reached through the project's repositories
    proj = world.repo_project[repo_id - 1]
    order = np.lexsort((-commits[link], owner[link], proj))
    proj_s, own_s, link_s = proj[order], owner[link][order], link[order]
    key = proj_s * (n + 1) + own_s
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lp, lo = proj_s[starts], own_s[starts]
    l_commits = np.add.reduceat(commits[link_s], starts)
    l_merged = np.add.reduceat(merged[link_s], starts)
    l_last = np.maximum.reduceat(last[link_s], starts)
    l_repos = np.diff(np.r_[starts, key.size])
    top_repo = world.u_full_name[urepo[link_s[starts]]]
    keep = rng.random(starts.size) < 0.93
    if mallory >= 0:
        keep |= lo == mallory
    lp, lo, l_commits, l_merged, l_last, l_repos, top_repo = (
        a[keep] for a in (lp, lo, l_commits, l_merged, l_last, l_repos, top_repo)
    )
    leads = dict(
        project=lp,
        owner=lo,
        contributor=ids[lo],
        commits=l_commits,
        merged=l_merged,
        last=l_last,
        repos=l_repos,
        top_repo=top_repo,
        followers=followers[lo],
        hireable=hireable[lo],
        has_company=pd.notna(company[lo]),
        mallory=(lo == mallory) if mallory >= 0 else None,
    )
    return contributors, rc, leads


def _score_leads(rng, world: _World, leads: dict, first_id: int):
    """Scores, tiers, funnel status, signals and timestamps for a chunk's leads."""
    n = leads["project"].size
    recent_days = np.maximum((ANCHOR_S - leads["last"]) // DAY, 0)
    raw = (
        30 * np.minimum(np.log1p(leads["commits"]) / np.log(400), 1.0)
        + 18 * np.minimum(np.log1p(leads["merged"]) / np.log(80), 1.0)
        + 14 * np.minimum(np.log1p(leads["followers"]) / np.log(5000), 1.0)
        + 22 * np.exp(-recent_days / 75.0)
        + np.select([leads["hireable"] == 1, leads["hireable"] == -1], [8.0, 2.0], 0.0)
        + 4 * leads["has_company"]
        + 3 * np.minimum(leads["repos"] - 1, 2)
    )
    score = np.clip(np.rint(1.25 * raw + rng.normal(0.0, 6.0, n) - 3.0), 0, 100).astype(np.int64)
    mallory = leads["mallory"]
    if mallory is not None and mallory.any():
        score[np.flatnonzero(mallory)[0]] = 91
    tier = np.where(score >= 75, 0, np.where(score >= 45, 1, 2))
    # funnel: mostly new; hot leads further along
    status_p = np.array(
        [
            [0.34, 0.26, 0.18, 0.08, 0.14],  # hot
            [0.58, 0.20, 0.11, 0.07, 0.04],  # warm
            [0.78, 0.12, 0.03, 0.06, 0.01],  # cold
        ]
    )
    cum = np.cumsum(status_p, axis=1)[tier]
    status = (rng.random(n)[:, None] > cum).sum(axis=1)
    status = np.minimum(status, 4)
    if mallory is not None and mallory.any():
        status[np.flatnonzero(mallory)[0]] = 0
    scored = (ANCHOR_S - rng.uniform(2.0, WINDOW_DAYS - 1, n) * DAY).astype(np.int64)
    frac = rng.beta(2.0, 3.0, n)
    changed = np.where(
        status == 0,
        scored,
        np.minimum(scored + np.maximum(frac * (ANCHOR_S - scored), DAY).astype(np.int64), ANCHOR_S),
    )
    hire = np.array(["null", "false", "true"], dtype=object)[leads["hireable"] + 1]
    signals = (
        '{"commits": '
        + _strs(leads["commits"])
        + ', "merged_prs": '
        + _strs(leads["merged"])
        + ', "followers": '
        + _strs(leads["followers"])
        + ', "recent_activity_days": '
        + _strs(recent_days)
        + ', "repos": '
        + _strs(leads["repos"])
        + ', "hireable": '
        + hire
        + ', "top_repo": "'
        + leads["top_repo"]
        + '"}'
    )
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    rows = [
        _ints(ids),
        _ints(leads["project"] + 1),
        _ints(leads["contributor"]),
        _ints(score),
        _obj(TIERS)[tier].tolist(),
        _obj(STATUSES)[status].tolist(),
        signals.tolist(),
        _ts(scored),
        _ts(changed),
    ]
    return rows, dict(ids=ids, project=leads["project"], status=status, scored=scored, changed=changed)


def _outreach(rng, world: _World, lead: dict, first_id: int, note_pools: dict[str, np.ndarray]):
    """1-4 outreach events for every lead past 'new', consistent with its status."""
    sel = np.flatnonzero(lead["status"] > 0)
    status = lead["status"][sel]
    lo = np.array([0, 1, 2, 1, 2])  # events: contacted 1-3, qualified 2-4, disqualified 1-3, converted 2-4
    count = lo[status] + rng.choice(np.arange(3), size=sel.size, p=[0.5, 0.33, 0.17])
    count = np.minimum(count, 4)
    ev_lead = np.repeat(np.arange(sel.size), count)
    m = ev_lead.size
    pos = np.arange(m) - np.repeat(np.cumsum(count) - count, count)
    n_of = count[ev_lead]
    last = pos == n_of - 1
    st = status[ev_lead]
    o = {name: i for i, name in enumerate(OUTCOMES)}
    # early touches
    outcome = rng.choice(
        np.array([o["sent"], o["opened"], o["no_response"], o["bounced"]]), size=m, p=[0.42, 0.33, 0.2, 0.05]
    )
    r = rng.random(m)
    final = np.select(
        [st == 1, st == 2, st == 3, st == 4],
        [
            np.where(
                r < 0.35, o["sent"], np.where(r < 0.65, o["opened"], np.where(r < 0.9, o["no_response"], o["bounced"]))
            ),
            np.where(r < 0.75, o["replied"], o["meeting"]),
            np.where(r < 0.45, o["replied"], np.where(r < 0.7, o["bounced"], o["no_response"])),
            np.full(m, o["meeting"]),
        ],
    )
    outcome = np.where(last, final, outcome)
    # converted leads replied before the meeting
    outcome = np.where((st == 4) & (pos == n_of - 2), o["replied"], outcome)
    primary = rng.choice(len(CHANNELS), size=sel.size, p=[0.5, 0.25, 0.06, 0.12, 0.07])
    channel = np.where(
        rng.random(m) < 0.7, primary[ev_lead], rng.choice(len(CHANNELS), size=m, p=[0.45, 0.25, 0.08, 0.12, 0.10])
    )
    channel = np.where((outcome == o["meeting"]) & (rng.random(m) < 0.6), CHANNELS.index("call"), channel)
    channel = np.where(outcome == o["bounced"], CHANNELS.index("email"), channel)
    scored = lead["scored"][sel][ev_lead]
    changed = lead["changed"][sel][ev_lead]
    u = np.where(last, 1.0, rng.uniform(0.2, 1.0, m))
    occurred = (scored + (changed - scored) * (pos + u) / n_of).astype(np.int64)
    # who logged it: someone in the project's org who can write
    org = world.project_org[lead["project"][sel][ev_lead]]
    created_by = np.zeros(m, dtype=np.int64)
    for i, senders in enumerate(world.sender_ids):
        mm = org == i
        if mm.any():
            created_by[mm] = senders[rng.integers(0, len(senders), int(mm.sum()))]
    by = np.where(rng.random(m) < 0.05, _NULL, _strs(created_by))
    note = np.full(m, _NULL, dtype=object)
    has_note = rng.random(m) < 0.5
    for i, name in enumerate(OUTCOMES):
        mm = has_note & (outcome == i)
        if mm.any():
            note[mm] = _pick(rng, note_pools[name], int(mm.sum()))
    ids = np.arange(first_id, first_id + m, dtype=np.int64)
    return [
        _ints(ids),
        _ints(lead["ids"][sel][ev_lead]),
        _obj(CHANNELS)[channel].tolist(),
        _obj(OUTCOMES)[outcome].tolist(),
        _ts(occurred),
        by.tolist(),
        note.tolist(),
    ]


class _Generator:
    """Produces the COPY payloads chunk by chunk; chunks must be generated in order."""

    def __init__(self, contributors: int, seed: int) -> None:
        self.contributors, self.seed = contributors, seed
        self.pools = _Pools()
        self.note_pools = {k: _obj([_esc(v) for v in vals]) for k, vals in OUTREACH_NOTES.items()}
        self.world = _build_world(np.random.default_rng(seed), self.pools)
        self.logins = _Logins()
        self.logins.reserve([s[0] for s in SHOWCASE])
        self.next_lead, self.next_event = 1, 1
        self.starts = list(range(0, contributors, CHUNK_CONTRIBUTORS))

    def head(self) -> list[tuple[str, tuple[str, ...], int, list[str]]]:
        out = []
        for table in ("organizations", "users", "projects", "repositories"):
            n, blocks = _blocks(self.world.rows[table])
            out.append((table, TABLE_COLUMNS[table], n, blocks))
        self.world.rows.clear()
        return out

    def chunk(self, index: int) -> list[tuple[str, tuple[str, ...], int, list[str]]]:
        start = self.starts[index]
        n = min(CHUNK_CONTRIBUTORS, self.contributors - start)
        rng = np.random.default_rng([self.seed, 1 + index])
        people, rc, leads = _contributor_chunk(rng, self.pools, self.world, self.logins, start, n, index == 0)
        lead_rows, lead = _score_leads(rng, self.world, leads, self.next_lead)
        events = _outreach(rng, self.world, lead, self.next_event, self.note_pools)
        out: list[tuple[str, tuple[str, ...], int, list[str]]] = []
        for table, columns, data in (
            ("contributors", CONTRIBUTOR_COLUMNS, people),
            ("repository_contributors", RC_COLUMNS, rc),
            ("lead_scores", LEAD_COLUMNS, lead_rows),
            ("outreach_events", OUTREACH_COLUMNS, events),
        ):
            rows, blocks = _blocks(data)
            out.append((table, columns, rows, blocks))
        self.next_lead += len(lead_rows[0])
        self.next_event += len(events[0])
        return out
