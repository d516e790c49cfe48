"""Skill discovery, the prompt listing, $mentions, the confined read_file tool, and the
bundled plg-database skill checked against the real schema and the real demo database."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from nexusleads_lab.agent.skills import (
    Skill,
    SkillFileError,
    SkillSet,
    SkillWarning,
    bundled_skills_dir,
    discover_skills,
)
from nexusleads_lab.db import schema

REPO = Path(__file__).resolve().parent.parent
BUNDLED_SKILL = REPO / "skills" / "plg-database" / "SKILL.md"


def write_skill(
    skills_dir: Path,
    folder: str,
    *,
    name: str | None = None,
    description: str = "Does things.",
    body: str = "# Body\n",
    front: str | None = None,
) -> Path:
    """A SKILL.md in ``skills_dir/folder``; ``front`` replaces the whole front matter block."""
    path = skills_dir / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    if front is None:
        front = f"---\nname: {name or folder}\ndescription: {json.dumps(description)}\n---\n"
    path.write_text(front + body, encoding="utf-8")
    return path


@pytest.fixture()
def tree(tmp_path: Path) -> dict[str, Path]:
    """A home folder holding a git project with a nested working folder, and a bundled folder."""
    home = tmp_path / "home"
    project = home / "code" / "proj"
    cwd = project / "notebooks" / "q3"
    cwd.mkdir(parents=True)
    (project / ".git").mkdir()
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    return {"home": home, "project": project, "cwd": cwd, "bundled": bundled}


def quiet_discover(t: dict[str, Path]) -> SkillSet:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid tree must discover without a single warning
        return discover_skills(cwd=t["cwd"], home=t["home"], bundled=t["bundled"])


# -- discovery ---------------------------------------------------------------------------------


def test_discovers_every_scope_in_precedence_order(tree):
    write_skill(tree["cwd"] / ".agents" / "skills", "here")
    write_skill(tree["project"] / "notebooks" / ".agents" / "skills", "middle")
    write_skill(tree["project"] / ".agents" / "skills", "root")
    write_skill(tree["home"] / ".agents" / "skills", "mine")
    write_skill(tree["bundled"], "shipped")

    skills = quiet_discover(tree)

    assert skills.names() == ["here", "middle", "root", "mine", "shipped"]
    assert [s.source for s in skills] == ["project", "project", "project", "user", "bundled"]
    here = skills.get("here")
    assert here.path == (tree["cwd"] / ".agents" / "skills" / "here" / "SKILL.md").resolve()
    assert here.root == here.path.parent and here.path.is_absolute()
    assert here.body() == "# Body\n" and here.text().startswith("---\nname: here\n")
    assert skills.problems == []


def test_walk_stops_at_the_project_root(tree):
    # Above the .git folder, still below home: not part of this project.
    write_skill(tree["home"] / "code" / ".agents" / "skills", "outside-project")
    assert "outside-project" not in quiet_discover(tree)


def test_without_git_walk_stops_below_home(tree, tmp_path):
    (tree["project"] / ".git").rmdir()
    write_skill(tree["home"] / "code" / ".agents" / "skills", "ancestor")
    write_skill(tmp_path / ".agents" / "skills", "above-home")  # the parent of home
    skills = quiet_discover(tree)
    assert skills.get("ancestor").source == "project"
    assert "above-home" not in skills


def test_home_as_working_folder_lists_user_skills_once(tree):
    write_skill(tree["home"] / ".agents" / "skills", "mine")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skills = discover_skills(cwd=tree["home"], home=tree["home"], bundled=tree["bundled"])
    assert [(s.name, s.source) for s in skills] == [("mine", "user")]


def test_name_clash_first_wins_and_later_ones_warn(tree):
    write_skill(tree["cwd"] / ".agents" / "skills", "shared", description="the project's version")
    write_skill(tree["home"] / ".agents" / "skills", "shared", description="the user's version")
    write_skill(tree["bundled"], "shared", description="the bundled version")
    write_skill(tree["home"] / ".agents" / "skills", "only-user")
    write_skill(tree["bundled"], "only-user", description="shadowed")

    with pytest.warns(SkillWarning) as caught:
        skills = discover_skills(cwd=tree["cwd"], home=tree["home"], bundled=tree["bundled"])

    assert skills.get("shared").description == "the project's version"
    assert skills.get("shared").source == "project"
    assert skills.get("only-user").source == "user"
    assert len(caught) == 3 and len(skills.problems) == 3
    assert all("already" not in p and "found first" in p for p in skills.problems)
    assert any(str(tree["bundled"] / "shared" / "SKILL.md") in p for p in skills.problems)


INVALID = {
    "missing-name": "---\ndescription: Has no name.\n---\n",
    "Upper": "---\nname: Upper\ndescription: Uppercase name.\n---\n",
    "not-the-folder": "---\nname: another-name\ndescription: Name differs from folder.\n---\n",
    "too-long": "---\nname: too-long\ndescription: " + "x" * 1025 + "\n---\n",
    "no-description": "---\nname: no-description\n---\n",
    "empty-description": "---\nname: empty-description\ndescription: '  '\n---\n",
    "no-front-matter": "# Just markdown\n\nname: no-front-matter\n",
    "unclosed": "---\nname: unclosed\ndescription: never closed\n",
    "bad-yaml": "---\nname: bad-yaml\ndescription: [unclosed\n---\n",
    "not-a-mapping": "---\n- name\n- description\n---\n",
    "double--hyphen": "---\nname: double--hyphen\ndescription: Bad hyphens.\n---\n",
}


@pytest.mark.parametrize("folder", sorted(INVALID))
def test_invalid_skill_is_skipped_with_a_warning(tree, folder):
    skills_dir = tree["project"] / ".agents" / "skills"
    bad = write_skill(skills_dir, folder, front=INVALID[folder])
    write_skill(skills_dir, "good-one")

    with pytest.warns(SkillWarning, match=re.escape(str(bad.resolve()))):
        skills = discover_skills(cwd=tree["cwd"], home=tree["home"], bundled=tree["bundled"])

    assert skills.names() == ["good-one"]
    assert len(skills.problems) == 1 and str(bad.resolve()) in skills.problems[0]


def test_warnings_say_what_is_wrong(tree):
    skills_dir = tree["project"] / ".agents" / "skills"
    for folder in ("Upper", "not-the-folder", "too-long", "bad-yaml", "no-front-matter"):
        write_skill(skills_dir, folder, front=INVALID[folder])
    with pytest.warns(SkillWarning):
        problems = "\n".join(discover_skills(cwd=tree["cwd"], home=tree["home"], bundled=tree["bundled"]).problems)
    assert "lowercase" in problems
    assert "'another-name', but its folder is 'not-the-folder'" in problems
    assert "1025 characters; the limit is 1024" in problems
    assert "not valid YAML" in problems
    assert "no YAML front matter" in problems


def test_name_of_64_characters_is_fine_65_is_not(tree):
    skills_dir = tree["project"] / ".agents" / "skills"
    write_skill(skills_dir, "a" * 64)
    write_skill(skills_dir, "b" * 65)
    with pytest.warns(SkillWarning, match="longer than 64"):
        skills = discover_skills(cwd=tree["cwd"], home=tree["home"], bundled=tree["bundled"])
    assert skills.names() == ["a" * 64]


def test_extra_front_matter_fields_and_folders_without_skill_md_are_fine(tree):
    skills_dir = tree["project"] / ".agents" / "skills"
    write_skill(
        skills_dir,
        "rich",
        front="---\nname: rich\ndescription: >\n  Folded\n  text.\nlicense: MIT\nmetadata:\n  version: '1'\n---\n",
    )
    (skills_dir / "just-a-folder").mkdir()
    skills = quiet_discover(tree)
    assert skills.names() == ["rich"] and skills.get("rich").description == "Folded text."


def test_skill_md_linking_outside_its_folder_is_skipped(tree, tmp_path):
    outside = tmp_path / "elsewhere.md"
    outside.write_text("---\nname: linked\ndescription: Sneaky.\n---\n")
    folder = tree["project"] / ".agents" / "skills" / "linked"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").symlink_to(outside)
    with pytest.warns(SkillWarning, match="outside its skill folder"):
        skills = discover_skills(cwd=tree["cwd"], home=tree["home"], bundled=tree["bundled"])
    assert len(skills) == 0


def test_bundled_plg_database_is_found_by_default():
    assert bundled_skills_dir() == REPO / "skills"
    skills = discover_skills()
    skill = skills.get("plg-database")
    assert skill is not None, skills.problems
    assert skill.path == BUNDLED_SKILL
    assert skill.source in {"bundled", "project"}  # "project" only if run from a tree that has its own copy


# -- what the model sees ---------------------------------------------------------------------


def test_prompt_listing_has_names_descriptions_paths_but_no_bodies(tree):
    write_skill(
        tree["cwd"] / ".agents" / "skills", "alpha", description="Use for alpha things.", body="SECRET-BODY-ALPHA\n"
    )
    write_skill(tree["bundled"], "beta", description="Use for\n beta things.", body="SECRET-BODY-BETA\n")
    skills = quiet_discover(tree)
    listing = skills.prompt_listing()
    for skill in skills:
        assert skill.name in listing and str(skill.path) in listing
    assert "Use for alpha things." in listing and "Use for beta things." in listing
    assert "SECRET-BODY" not in listing
    assert len(listing.splitlines()) == 2
    assert SkillSet().prompt_listing() == "No skills are installed."


def test_mentions_find_known_skills_at_word_boundaries(tree):
    write_skill(tree["bundled"], "plg-database")
    write_skill(tree["bundled"], "plg")
    skills = quiet_discover(tree)

    def names(text: str) -> list[str]:
        return [s.name for s in skills.mentions(text)]

    assert names("use $plg-database, please") == ["plg-database"]
    assert names("($plg-database)") == ["plg-database"]
    assert names("$plg-database.") == ["plg-database"]
    assert names("$plg and $plg-database and $plg again") == ["plg", "plg-database"]
    assert names("it costs US$5 or $unknown") == []
    assert names("x$plg-database") == []
    assert names("$plg-databasex or $plg-database_2 or $$plg") == []
    assert names("") == []


# -- read_file -------------------------------------------------------------------------------


@pytest.fixture()
def skill_files(tree, tmp_path) -> SkillSet:
    skills_dir = tree["project"] / ".agents" / "skills"
    write_skill(skills_dir, "plg-database", body="Schema below.\n")
    refs = skills_dir / "plg-database" / "references"
    refs.mkdir()
    (refs / "schema.md").write_text("# Schema reference\ncolumns…\n", encoding="utf-8")
    (refs / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (refs / "escape.md").symlink_to(secret)
    (skills_dir / "not-a-skill").mkdir()
    (skills_dir / "not-a-skill" / "notes.md").write_text("not discovered")
    return quiet_discover(tree)


def test_read_file_reads_skill_files_in_every_form(skill_files):
    skill = skill_files.get("plg-database")
    assert skill_files.read_file(str(skill.path)).endswith("Schema below.\n")
    assert skill_files.read_file("plg-database/SKILL.md") == skill.text()
    assert skill_files.read_file("SKILL.md") == skill.text()
    assert skill_files.read_file("references/schema.md") == "# Schema reference\ncolumns…\n"
    assert skill_files.read_file("plg-database/references/schema.md").startswith("# Schema reference")
    assert skill_files.read_file(str(skill.root / "references" / ".." / "SKILL.md")) == skill.text()


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../../../../../../etc/passwd", "outside every skill folder"),
        ("plg-database/../not-a-skill/notes.md", "outside every skill folder"),
        ("/etc/passwd", "outside every skill folder"),
        ("references/escape.md", "outside every skill folder"),
        ("references", "is a folder"),
        ("plg-database", "is a folder"),
        ("references/missing.md", "no such file"),
        ("references/logo.png", "binary"),
        ("", "no path was given"),
        ("bad\x00name", "NUL byte"),
    ],
)
def test_read_file_refuses_with_one_clear_sentence(skill_files, path, why):
    with pytest.raises(SkillFileError) as caught:
        skill_files.read_file(path)
    message = str(caught.value)
    assert why in message
    assert "plg-database (" in message  # names the folders it may read
    assert message.count(". ") == 0 and message.endswith(".") and "\n" not in message
    assert "top secret" not in message


def test_read_file_with_no_skills_explains_itself():
    with pytest.raises(SkillFileError, match="no skills are installed"):
        SkillSet().read_file("SKILL.md")


def test_read_file_cuts_large_files_and_says_so(skill_files):
    root = skill_files.get("plg-database").root
    (root / "references" / "big.md").write_text("é" * 50_000, encoding="utf-8")  # 100,000 bytes
    text = skill_files.read_file("references/big.md", max_bytes=1001)
    head, note = text.split("\n\n[read_file:")
    assert head == "é" * 500  # the half character at the cut is held back, not garbled
    assert "cut at 1001 of 100000 bytes" in note
    assert skill_files.read_file("references/big.md", max_bytes=100_000) == "é" * 50_000


def test_skill_is_a_frozen_value(skill_files):
    skill = skill_files.get("plg-database")
    with pytest.raises(AttributeError):
        skill.name = "other"  # type: ignore[misc]
    assert isinstance(skill, Skill) and skill in list(skill_files)


# -- the bundled plg-database skill ----------------------------------------------------------


def bundled_text() -> str:
    return BUNDLED_SKILL.read_text(encoding="utf-8")


def fenced(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", bundled_text(), flags=re.S | re.M)


def lead_columns() -> dict[str, list[str]]:
    """Table -> columns, read from the migration that creates the lead tables."""
    tables: dict[str, list[str]] = {}
    for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", schema.MIGRATIONS[0].sql, re.S):
        cols = [m.group(1) for line in body.splitlines() if (m := re.match(r"\s{4}(\w+)\s+\w", line))]
        tables[table] = [c for c in cols if c.upper() not in {"PRIMARY", "UNIQUE", "CHECK"}]
    return tables


def test_bundled_skill_is_valid_and_documents_the_real_schema():
    skill = discover_skills(bundled=REPO / "skills").get("plg-database")
    assert skill is not None and len(skill.description) <= 1024
    body = skill.body()
    tables = lead_columns()
    assert set(tables) == set(schema.LEAD_TABLES)
    sections = re.split(r"^### ", body, flags=re.M)
    for table, columns in tables.items():
        section = next((s for s in sections if s.startswith(f"`{table}`")), None)
        assert section is not None, f"no '### `{table}`' section"
        for column in columns:
            if table == "users" and column == "password_hash":
                continue
            assert f"`{column}`" in section, f"{table}.{column} is not documented"
    for value in (
        "'hot'",
        "'warm'",
        "'cold'",
        "'new'",
        "'contacted'",
        "'qualified'",
        "'disqualified'",
        "'converted'",
        "'linkedin'",
        "'no_response'",
        "'meeting'",
        "'stale'",
        "'enterprise'",
    ):
        assert value.strip("'") in body
    for chat_table in schema.CHAT_TABLES:  # not readable by the agent: never offered as a source
        assert not re.search(rf"\bFROM\s+{chat_table}\b", body, re.I)
    assert not re.search(r"SELECT[^;]*password_hash", body, re.I | re.S)


def test_bundled_skill_json_examples_are_valid_responses():
    from nexusleads_lab.agent.responses import RESPONSE_ADAPTER

    blocks = fenced("json")
    assert {json.loads(b)["type"] for b in blocks} == {"message", "dashboard", "confirm"}
    for block in blocks:
        RESPONSE_ADAPTER.validate_python(json.loads(block))


WRITE_RE = re.compile(r"\b(insert\s+into|update\s+\w+\s+set|delete\s+from)\b", re.I)


def sql_examples() -> list[str]:
    return [b.strip() for b in fenced("sql")]


def test_bundled_skill_has_enough_examples():
    blocks = sql_examples()
    assert 10 <= len(blocks) <= 20
    assert sum(bool(WRITE_RE.search(b)) for b in blocks) >= 1


@pytest.mark.parametrize("index", range(len(sql_examples())))
def test_bundled_skill_sql_examples_run_on_the_demo_database(db, index):
    sql = sql_examples()[index]
    if WRITE_RE.search(sql):
        # A proposal must pass the parser's rules and preview read-only (nothing is written).
        from nexusleads_lab.db.dml import plan_write

        for stmt in plan_write(sql).statements:
            assert db.engine.read(stmt.count_sql).row_count == 1
            db.engine.read(stmt.sample_sql)
    else:
        result = db.engine.read(sql)  # as the restricted read-only agent role
        assert len(result.df.columns) == len(set(result.df.columns)), "duplicate column names"
