"""The relations a statement from the model may read: the schema's lead tables, the whole of
``information_schema``, and the catalog relations schema exploration needs. Everything else of
``pg_catalog`` is refused, and by name with a reason where it matters: role names and their
settings (a web app's secrets kept with ``ALTER DATABASE/ROLE ... SET``), other sessions, and
statistics that count every organization's rows.
"""

from __future__ import annotations

from .schema import CHAT_TABLES, LEAD_TABLES, USER_COLUMNS_FOR_AGENT

READABLE_CATALOG: frozenset[str] = frozenset(
    """
    pg_class pg_attribute pg_namespace pg_constraint pg_index pg_description pg_type pg_tables
    pg_indexes pg_views pg_settings pg_attrdef pg_am pg_enum pg_matviews pg_inherits pg_proc
    pg_collation pg_depend pg_trigger pg_rewrite pg_range pg_operator pg_cast pg_opclass
    pg_language pg_aggregate pg_partitioned_table pg_sequence pg_ts_config pg_ts_dict
    pg_timezone_names pg_timezone_abbrevs pg_extension
    """.split()
)

_ROLES = ("names every login of the database, which is not readable here", "current_user names your own login")
_VOLUMES = (
    "counts every organization's rows, not your scope's",
    "count(*) over the table, which counts your scope's rows",
)
_SESSIONS = ("shows other sessions of the database", "nothing: a read sees only its own query")
DENIED_RELATIONS: dict[str, tuple[str, str]] = {
    "pg_db_role_setting": (
        "holds the settings kept with ALTER DATABASE/ROLE ... SET, secrets included",
        "pg_settings shows this session's settings",
    ),
    "pg_roles": _ROLES,
    "pg_user": _ROLES,
    "pg_authid": _ROLES,
    "pg_auth_members": _ROLES,
    "pg_shadow": _ROLES,
    "pg_group": _ROLES,
    "pg_stat_activity": _SESSIONS,
    "pg_stat_ssl": _SESSIONS,
    "pg_stat_gssapi": _SESSIONS,
    "pg_stat*": _VOLUMES,
    "pg_statio*": _VOLUMES,
    "pg_statistic*": _VOLUMES,
    "pg_sequences": ("shows each sequence's last value across organizations", "max(id) over the table"),
    "pg_locks": _SESSIONS,
    "pg_prepared_xacts": _SESSIONS,
    "pg_backend_memory_contexts": _SESSIONS,
    "pg_database": ("lists the server's databases", "current_database() names this one"),
    "pg_file_settings": ("reads the server's configuration files", "pg_settings"),
    "pg_hba_file_rules": ("reads the server's configuration files", "pg_settings"),
    "pg_shdescription": ("holds comments on roles and databases", "obj_description / col_description"),
    "pg_policy": ("holds the scope's row-level security", "your scope is what the tables show"),
    "pg_policies": ("holds the scope's row-level security", "your scope is what the tables show"),
    "pg_user_mappings": _ROLES,
    "pg_user_mapping": _ROLES,
}

# Columns of readable relations that are not: (relation, column) -> (why, instead).
DENIED_COLUMNS: dict[tuple[str, str], tuple[str, str]] = {
    **{("pg_class", c): _VOLUMES for c in ("reltuples", "relpages", "relallvisible", "relallfrozen")},
    ("users", "password_hash"): (
        "is not readable",
        "readable columns of users: " + ", ".join(USER_COLUMNS_FOR_AGENT),
    ),
}
# Relations with a denied column: a star or a whole-row reference over them is refused too.
PARTLY_READABLE: dict[str, tuple[str, ...]] = {}
for _rel, _col in DENIED_COLUMNS:
    PARTLY_READABLE.setdefault(_rel, ())
    PARTLY_READABLE[_rel] += (_col,)

# information_schema views that list only what the current role owns (or may write), so a
# reader would get no rows and conclude there are none: each is read from the catalog instead,
# limited to the relations the reader may read. Same columns, same names.
_READABLE_REL = "has_any_column_privilege(r.oid, 'SELECT')"
_RULE = "CASE {} WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END"
_ID = "::information_schema.sql_identifier"
SCHEMA_VIEWS: dict[str, str] = {
    "table_constraints": f"""SELECT current_database(){_ID} AS constraint_catalog, nc.nspname{_ID} AS constraint_schema,
 c.conname{_ID} AS constraint_name, current_database(){_ID} AS table_catalog, nr.nspname{_ID} AS table_schema,
 r.relname{_ID} AS table_name,
 (CASE c.contype WHEN 'c' THEN 'CHECK' WHEN 'f' THEN 'FOREIGN KEY' WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE'
  WHEN 'n' THEN 'CHECK' END)::information_schema.character_data AS constraint_type,
 'NO'::information_schema.yes_or_no AS is_deferrable, 'NO'::information_schema.yes_or_no AS initially_deferred,
 'YES'::information_schema.yes_or_no AS enforced, NULL::information_schema.yes_or_no AS nulls_distinct
 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace nc ON nc.oid = c.connamespace
 JOIN pg_catalog.pg_class r ON r.oid = c.conrelid JOIN pg_catalog.pg_namespace nr ON nr.oid = r.relnamespace
 WHERE c.contype IN ('c', 'f', 'p', 'u') AND {_READABLE_REL}""",
    "key_column_usage": f"""SELECT current_database(){_ID} AS constraint_catalog, nc.nspname{_ID} AS constraint_schema,
 c.conname{_ID} AS constraint_name, current_database(){_ID} AS table_catalog, nr.nspname{_ID} AS table_schema,
 r.relname{_ID} AS table_name, a.attname{_ID} AS column_name,
 k.n::information_schema.cardinal_number AS ordinal_position,
 (CASE WHEN c.contype = 'f' THEN k.n END)::information_schema.cardinal_number AS position_in_unique_constraint
 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace nc ON nc.oid = c.connamespace
 JOIN pg_catalog.pg_class r ON r.oid = c.conrelid JOIN pg_catalog.pg_namespace nr ON nr.oid = r.relnamespace
 CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
 JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum = k.attnum
 WHERE c.contype IN ('f', 'p', 'u') AND {_READABLE_REL}""",
    "constraint_column_usage": f"""SELECT current_database(){_ID} AS table_catalog, nr.nspname{_ID} AS table_schema,
 r.relname{_ID} AS table_name, a.attname{_ID} AS column_name, current_database(){_ID} AS constraint_catalog,
 nc.nspname{_ID} AS constraint_schema, c.conname{_ID} AS constraint_name
 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace nc ON nc.oid = c.connamespace
 JOIN pg_catalog.pg_class r ON r.oid = CASE WHEN c.contype = 'f' THEN c.confrelid ELSE c.conrelid END
 JOIN pg_catalog.pg_namespace nr ON nr.oid = r.relnamespace
 CROSS JOIN LATERAL unnest(CASE WHEN c.contype = 'f' THEN c.confkey ELSE c.conkey END) AS k(attnum)
 JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum = k.attnum
 WHERE c.contype IN ('c', 'f', 'p', 'u') AND {_READABLE_REL}""",
    "constraint_table_usage": f"""SELECT current_database(){_ID} AS table_catalog, nr.nspname{_ID} AS table_schema,
 r.relname{_ID} AS table_name, current_database(){_ID} AS constraint_catalog, nc.nspname{_ID} AS constraint_schema,
 c.conname{_ID} AS constraint_name
 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace nc ON nc.oid = c.connamespace
 JOIN pg_catalog.pg_class r ON r.oid = CASE WHEN c.contype = 'f' THEN c.confrelid ELSE c.conrelid END
 JOIN pg_catalog.pg_namespace nr ON nr.oid = r.relnamespace
 WHERE c.contype IN ('c', 'f', 'p', 'u') AND {_READABLE_REL}""",
    "referential_constraints": f"""SELECT current_database(){_ID} AS constraint_catalog, nc.nspname{_ID} AS constraint_schema,
 c.conname{_ID} AS constraint_name, current_database(){_ID} AS unique_constraint_catalog,
 npk.nspname{_ID} AS unique_constraint_schema, pk.conname{_ID} AS unique_constraint_name,
 (CASE c.confmatchtype WHEN 'f' THEN 'FULL' WHEN 'p' THEN 'PARTIAL' ELSE 'NONE' END)::information_schema.character_data
   AS match_option,
 ({_RULE.format("c.confupdtype")})::information_schema.character_data AS update_rule,
 ({_RULE.format("c.confdeltype")})::information_schema.character_data AS delete_rule
 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace nc ON nc.oid = c.connamespace
 JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
 LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.confrelid AND pk.conindid = c.conindid
   AND pk.contype IN ('p', 'u')
 LEFT JOIN pg_catalog.pg_namespace npk ON npk.oid = pk.connamespace
 WHERE c.contype = 'f' AND {_READABLE_REL}""",
    "check_constraints": f"""SELECT current_database(){_ID} AS constraint_catalog, nc.nspname{_ID} AS constraint_schema,
 c.conname{_ID} AS constraint_name,
 substring(pg_catalog.pg_get_constraintdef(c.oid) FROM 7)::information_schema.character_data AS check_clause
 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace nc ON nc.oid = c.connamespace
 JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
 WHERE c.contype = 'c' AND {_READABLE_REL}""",
}
# Custom settings (a name with a dot: "app.settings.jwt_secret") are what a web app keeps its
# secrets in; the rest of pg_settings is the server's documented configuration.
SETTINGS_VIEW = "SELECT * FROM pg_catalog.pg_settings WHERE name !~ '[.]'"


def readable_tables() -> str:
    return ", ".join(LEAD_TABLES)


def classify(schema: str | None, name: str) -> tuple[str, tuple[str, str] | None]:
    """(kind, refusal) for a relation as written: kind is "lead", "catalog", "information_schema"
    or "other"; refusal is (why, instead) when it may not be read."""
    tables = (f"the tables are {readable_tables()}", "lead_scores holds the leads")
    if schema in (None, "public") and not (schema is None and name.startswith("pg_")):
        if name in LEAD_TABLES:
            return "lead", None
        if name in CHAT_TABLES or name.startswith("nexus_"):
            return "other", ("is the product's own table, not readable by the assistant", tables[0])
        return "other", ("is not a table of the lead schema", f"{tables[0]} ({tables[1]})")
    if schema in (None, "pg_catalog"):
        if name in READABLE_CATALOG:
            return "catalog", None
        for pattern, entry in DENIED_RELATIONS.items():
            if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
                return "catalog", entry
        return "catalog", (
            "is not among the catalog relations the read path reads",
            "information_schema (tables, columns, table_constraints, key_column_usage, check_constraints) or "
            "pg_class, pg_attribute, pg_constraint, pg_index, pg_indexes, pg_description, pg_settings",
        )
    if schema == "information_schema":
        return "information_schema", None
    return "other", (f"is in schema {schema}, which the read path does not read", tables[0])
