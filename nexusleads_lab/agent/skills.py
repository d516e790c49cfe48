"""Skills in the Codex / Agent Skills format: ``<folder>/SKILL.md`` with YAML front matter.

Progressive disclosure: the system prompt carries only each skill's name, description and
path; the model reads a body (and any file next to it) with the ``read_file`` tool when it
decides the skill applies. ``read_file`` is confined to the discovered skill folders, because
the model's arguments are untrusted and the kernel can read everything the user can.

Discovery, first found wins on a name clash (the more specific place overrides):

1. project: ``.agents/skills/*/SKILL.md`` in the working directory, then in each parent up to
   and including the project root, the nearest folder holding a ``.git`` entry. Without a
   ``.git`` on the way, the walk stops *below* the user's home folder (whose ``.agents`` is
   the user scope, not a project) or at the filesystem root, whichever comes first.
2. user: ``~/.agents/skills/*/SKILL.md``.
3. bundled: the skills shipped with this package (see :func:`bundled_skills_dir`).
"""

from __future__ import annotations

import codecs
import functools
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import PACKAGE_DIR

SKILL_FILE = "SKILL.md"
MAX_NAME = 64
MAX_DESCRIPTION = 1024
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# `$name` that is not glued to a word or a `$` before it (US$5) nor continued after it.
_MENTION_RE = re.compile(r"(?<![\w$])\$([a-z0-9]+(?:-[a-z0-9]+)*)(?![\w-])")


class SkillWarning(UserWarning):
    """A skill file that was skipped (invalid, unreadable, or a duplicate name)."""


class SkillFileError(Exception):
    """``read_file`` refused a path; the message is one sentence meant for the model."""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    path: Path  # absolute, resolved path of SKILL.md
    root: Path  # the skill's folder (resolved): everything read_file may read for this skill
    source: str  # "project" | "user" | "bundled"

    def text(self) -> str:
        """The whole SKILL.md, read now so edits show up without rediscovery."""
        return self.path.read_text(encoding="utf-8-sig")

    def body(self) -> str:
        """The markdown after the front matter: what the model reads when it uses the skill."""
        split = _split_front_matter(self.text())
        return split[1].lstrip("\n") if split else self.text()


def _split_front_matter(text: str) -> tuple[str, str] | None:
    """(yaml, body) when ``text`` opens with a ``---`` line and has a closing ``---`` line."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None


@functools.lru_cache(maxsize=256)
def _front_matter(text: str) -> Any:
    """The parsed YAML (read, never changed): every session of a server discovers the skills
    afresh, and the same text is parsed once instead of at every session (~1 ms each)."""
    return yaml.safe_load(text)


def parse_skill(path: Path, source: str) -> Skill:
    """Load one SKILL.md; raise ``ValueError`` saying what is wrong with it."""
    folder = path.parent
    root = folder.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"is a link to a file outside its skill folder ({resolved})")
    try:
        text = resolved.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from None
    split = _split_front_matter(text)
    if split is None:
        raise ValueError("has no YAML front matter (a '---' line, the fields, then a closing '---' line)")
    try:
        meta = _front_matter(split[0])
    except yaml.YAMLError as exc:
        raise ValueError(f"has front matter that is not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(meta, dict):
        raise ValueError("has front matter that is not a mapping of fields")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("has no 'name' field")
    if len(name) > MAX_NAME:
        raise ValueError(f"has a name longer than {MAX_NAME} characters")
    if not NAME_RE.match(name):
        raise ValueError(f"has name {name!r}: use lowercase letters, digits and single hyphens only")
    if name != folder.name:
        raise ValueError(f"has name {name!r}, but its folder is {folder.name!r}; they must be equal")
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("has no 'description' field (say what the skill does and when to use it)")
    if len(description) > MAX_DESCRIPTION:
        raise ValueError(f"has a description of {len(description)} characters; the limit is {MAX_DESCRIPTION}")
    return Skill(name=name, description=description.strip(), path=resolved, root=root, source=source)


def bundled_skills_dir() -> Path:
    """Where this package's own skills are.

    A wheel carries them inside the package (``_bundled/skills``, force-included by
    pyproject); a source checkout or editable install has them beside the package. The wheel
    location is checked first so that an unrelated ``site-packages/skills`` folder can never
    be taken for ours.
    """
    wheel = PACKAGE_DIR / "_bundled" / "skills"
    return wheel if wheel.is_dir() else PACKAGE_DIR.parent / "skills"


def project_skill_dirs(cwd: Path, home: Path) -> list[Path]:
    """The project-scope ``.agents/skills`` folders, nearest first (rule in the module docstring)."""
    cwd, home = cwd.resolve(), home.resolve()
    dirs: list[Path] = []
    for folder in (cwd, *cwd.parents):
        if folder == home and not (folder / ".git").exists():
            break
        dirs.append(folder / ".agents" / "skills")
        if (folder / ".git").exists():
            break
    return dirs


class SkillSet:
    """The discovered skills, in precedence order, and the ``read_file`` tool over their folders."""

    def __init__(self, skills: list[Skill] | None = None, problems: list[str] | None = None) -> None:
        self._skills: dict[str, Skill] = {}
        for skill in skills or []:
            self._skills.setdefault(skill.name, skill)
        self.problems: list[str] = list(problems or [])
        self._listing: str | None = None

    def __iter__(self) -> Iterator[Skill]:
        return iter(self._skills.values())

    def __len__(self) -> int:
        return len(self._skills)

    def __contains__(self, name: object) -> bool:
        return name in self._skills

    def __repr__(self) -> str:
        return f"SkillSet({', '.join(self._skills) or 'empty'})"

    def get(self, name: str) -> Skill | None:
        return self._skills.get(name)

    def names(self) -> list[str]:
        return list(self._skills)

    def prompt_listing(self) -> str:
        """Name, description and path of each skill; bodies stay out of the prompt until read (made
        once: the set never changes, and every request's prompt carries it)."""
        if self._listing is None:
            lines = [f"- **{s.name}**: {' '.join(s.description.split())} (file: `{s.path}`)" for s in self]
            self._listing = "\n".join(lines) if lines else "No skills are installed."
        return self._listing

    def mentions(self, text: str) -> list[Skill]:
        """Skills named as ``$skill-name`` in a user message, in order, each once."""
        found: list[Skill] = []
        for match in _MENTION_RE.finditer(text or ""):
            skill = self._skills.get(match.group(1))
            if skill is not None and skill not in found:
                found.append(skill)
        return found

    # -- the read_file tool ------------------------------------------------------------------

    def _allowed(self) -> str:
        return ", ".join(f"{s.name} ({s.root})" for s in self)

    def _refuse(self, path: str, why: str) -> SkillFileError:
        return SkillFileError(
            f"Cannot read {path!r}: {why}; read_file only reads files in the folders of the skills {self._allowed()}."
        )

    def resolve(self, path: str) -> Path:
        """The file ``path`` names, resolved with symlinks followed, if it lies in a skill folder."""
        raw = (path or "").strip()
        if not raw:
            raise self._refuse(raw, "no path was given")
        if not self._skills:
            raise SkillFileError(f"Cannot read {raw!r}: no skills are installed, so read_file has nothing it may read.")
        if "\x00" in raw:
            raise self._refuse(raw, "the path contains a NUL byte")
        roots = list(dict.fromkeys(s.root for s in self))
        given = Path(raw)
        if given.is_absolute():
            candidates = [given]
        else:
            # Relative to a skill folder ("references/x.md"), or, when it starts with a skill's
            # name, to the folder holding that skill ("plg-database/SKILL.md").
            candidates = [r / given for r in roots]
            head = self._skills.get(given.parts[0]) if given.parts else None
            if head is not None:
                candidates.append(head.root.parent / given)
        inside: list[Path] = []
        escapes = False
        for candidate in candidates:
            try:
                resolved = candidate.resolve()
            except (OSError, RuntimeError):  # a symlink loop: nothing readable there
                escapes = True
                continue
            if any(resolved.is_relative_to(r) for r in roots):
                inside.append(resolved)
            else:
                escapes = True
        for resolved in inside:
            if resolved.is_file():
                return resolved
        if any(r.is_dir() for r in inside):
            raise self._refuse(raw, "it is a folder, not a file")
        if escapes:
            raise self._refuse(raw, "it is outside every skill folder (links are followed)")
        raise self._refuse(raw, "there is no such file")

    def read_file(self, path: str, max_bytes: int = 65536) -> str:
        """The ``read_file`` tool: the text of a file in a skill folder, cut at ``max_bytes``."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        resolved = self.resolve(path)
        try:
            size = resolved.stat().st_size
            with resolved.open("rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise self._refuse(path, f"the file cannot be opened ({exc.strerror or exc})") from None
        if b"\x00" in data:
            raise self._refuse(path, "it is a binary file, not text")
        truncated = len(data) > max_bytes
        # An incremental decoder holds back a multi-byte character cut at the boundary.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(data[:max_bytes], final=not truncated)
        if text.startswith("\ufeff"):
            text = text[1:]
        if truncated:
            text += f"\n\n[read_file: cut at {max_bytes} of {size} bytes; the rest of {resolved.name} was not shown.]"
        return text


def discover_skills(cwd: Path | None = None, home: Path | None = None, bundled: Path | None = None) -> SkillSet:
    """Find the skills for a session started in ``cwd`` (see the module docstring for the order)."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    home = Path.home() if home is None else Path(home)
    bundled = bundled_skills_dir() if bundled is None else Path(bundled)
    places = [(d, "project") for d in project_skill_dirs(cwd, home)]
    places += [(home / ".agents" / "skills", "user"), (bundled, "bundled")]

    skills: dict[str, Skill] = {}
    seen_files: set[Path] = set()
    problems: list[str] = []

    def skip(message: str) -> None:
        problems.append(message)
        warnings.warn(message, SkillWarning, stacklevel=3)

    for folder, source in places:
        try:
            entries = sorted(folder.iterdir()) if folder.is_dir() else []
        except OSError as exc:
            skip(f"Skipped skills folder {folder}: it cannot be listed ({exc.strerror or exc}).")
            continue
        for entry in entries:
            skill_file = entry / SKILL_FILE
            if entry.name.startswith(".") or not skill_file.is_file():
                continue
            if skill_file.resolve() in seen_files:  # the same folder reached twice (cwd == home)
                continue
            seen_files.add(skill_file.resolve())
            try:
                skill = parse_skill(skill_file, source)
            except ValueError as exc:
                skip(f"Skipped skill {skill_file}: it {exc}.")
                continue
            if skill.name in skills:
                first = skills[skill.name]
                skip(
                    f"Skipped skill {skill_file}: a {first.source} skill named {skill.name!r} "
                    f"was found first at {first.path}."
                )
                continue
            skills[skill.name] = skill
    return SkillSet(list(skills.values()), problems)
