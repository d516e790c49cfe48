"""The functions a statement from the model may call: a reviewed allow-list of built-ins.

Every name here is an immutable or stable PostgreSQL built-in that only computes a value
from its arguments, the scoped rows or the schema's own catalog: no sessions, locks, files,
sequences, notifications, WAL, settings or other backends. A call to anything else (found by
PostgreSQL's own parser, so quoting and schema qualification change nothing) is refused before
the statement reaches the server, with what to write instead. ``tests/test_functions.py``
checks the list against the catalog (built-in, in ``pg_catalog``, not volatile but for the
sampling pair ``random``/``setseed``) and against ``DENIED``: stable functions that read outside
the query. Adding a name is a reviewed change: check its volatility and what it touches first.
"""

from __future__ import annotations

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    """
    abs ceil ceiling floor round trunc sign mod power sqrt cbrt exp ln log log10 div
    width_bucket pi degrees radians sin cos tan cot asin acos atan atan2 gcd lcm factorial
    scale min_scale trim_scale
    length char_length character_length octet_length bit_length lower upper initcap
    btrim ltrim rtrim lpad rpad substr substring left right position strpos replace
    translate split_part concat concat_ws format reverse repeat starts_with regexp_replace
    regexp_match regexp_matches regexp_like regexp_count regexp_substr regexp_split_to_array
    regexp_split_to_table regexp_instr string_to_table similar_to_escape
    md5 sha256 encode decode chr ascii to_hex quote_literal quote_ident quote_nullable to_char
    to_number to_date to_timestamp string_to_array array_to_string
    now transaction_timestamp statement_timestamp
    date_trunc date_part extract age make_date make_time make_timestamp make_timestamptz
    make_interval justify_days justify_hours justify_interval isfinite date_bin timezone
    date overlaps date_add date_subtract
    count sum avg min max bool_and bool_or every string_agg array_agg jsonb_agg json_agg
    jsonb_object_agg json_object_agg percentile_cont percentile_disc mode stddev stddev_pop
    stddev_samp variance var_pop var_samp corr covar_pop covar_samp any_value bit_and bit_or
    regr_slope regr_intercept regr_r2 regr_count regr_avgx regr_avgy regr_sxx regr_syy regr_sxy
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value
    nth_value
    jsonb_build_object json_build_object jsonb_build_array json_build_array to_jsonb to_json
    jsonb_set jsonb_insert jsonb_strip_nulls jsonb_typeof json_typeof jsonb_array_length
    json_array_length jsonb_extract_path jsonb_extract_path_text jsonb_object_keys
    json_object_keys json_extract_path json_extract_path_text json_each json_each_text
    json_array_elements json_array_elements_text
    jsonb_array_elements jsonb_array_elements_text jsonb_each jsonb_each_text jsonb_path_exists
    jsonb_path_query jsonb_path_query_first jsonb_path_query_array jsonb_path_match jsonb_pretty
    jsonb_to_record jsonb_to_recordset json_to_record json_to_recordset
    array_append array_prepend array_cat array_remove array_replace array_length array_position
    array_positions cardinality unnest array_upper array_lower array_dims array_ndims
    generate_subscripts generate_series array_to_json row_to_json json_strip_nulls jsonb_object
    jsonb_exists trim_array
    overlay normalize is_normalized num_nulls num_nonnulls
    to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank
    ts_rank_cd ts_headline setweight strip numnode querytree tsvector_to_array array_to_tsvector
    ts_delete ts_filter tsquery_phrase get_current_ts_config
    lower_inf upper_inf isempty range_merge int4range int8range numrange tsrange tstzrange
    daterange host network masklen family abbrev broadcast netmask

    current_schema current_schemas current_database version pg_typeof format_type
    pg_get_constraintdef pg_get_indexdef pg_get_viewdef pg_get_expr col_description
    obj_description to_regclass to_regtype pg_table_is_visible pg_size_pretty pg_column_size
    pg_get_serial_sequence
    """.split()
)

# Volatile, yet harmless on a read: sampling (``ORDER BY random()``). Not on the write path's
# list, and granted back to the read groups in a database whose volatile built-ins are revoked.
READ_ONLY_VOLATILE: frozenset[str] = frozenset({"random", "setseed"})

# Stable or immutable built-ins that still read outside the query, and what to use instead.
# A prefix ending in "*" covers a family. The allow-list refuses them anyway; this is what the
# refusal says, and the catalog test checks each really is outside the allow-list.
DENIED: dict[str, tuple[str, str]] = {
    "current_setting": (
        "reads settings, custom ones included (a secret kept with ALTER DATABASE ... SET among them)",
        "SELECT name, setting FROM pg_settings WHERE name = '...'",
    ),
    "pg_stat_get_*": (
        "reads the statistics of every organization and every session",
        "count(*) over the table, which counts your scope's rows",
    ),
    "pg_stat_*": (
        "reads the statistics of every organization and every session",
        "count(*) over the table, which counts your scope's rows",
    ),
    "table_to_xml": ("reads a whole table outside the query's scope checks", "SELECT the rows and json_agg them"),
    "table_to_xmlschema": ("reads a table's definition as XML", "information_schema.columns"),
    "table_to_xml_and_xmlschema": ("reads a whole table as XML", "SELECT the rows and json_agg them"),
    "query_to_xml*": ("runs a query given as text", "write the query itself and json_agg the rows"),
    "cursor_to_xml*": ("reads a cursor", "write the query itself"),
    "schema_to_xml*": ("reads whole schemas", "information_schema.columns"),
    "database_to_xml*": ("reads the whole database", "information_schema.columns"),
    "nexus_scope": ("is the product's own scope binding", "current_user names your login"),
    "nexus_scope_org": ("is the product's own scope binding", "SELECT id, slug FROM organizations"),
    "pg_get_userbyid": ("reads role names, which are not readable here", "current_user names your login"),
    "shobj_description": ("reads comments on roles and databases", "obj_description / col_description"),
    "has_*_privilege": ("probes other roles' privileges", "information_schema.columns lists what you can read"),
    "pg_has_role": ("probes other roles", "current_user names your login"),
    "pg_relation_size": ("counts every organization's rows (as bytes)", "count(*) over the table"),
    "pg_total_relation_size": ("counts every organization's rows (as bytes)", "count(*) over the table"),
    "pg_table_size": ("counts every organization's rows (as bytes)", "count(*) over the table"),
    "pg_indexes_size": ("counts every organization's rows (as bytes)", "count(*) over the table"),
    "pg_database_size": ("measures every organization's data", "count(*) over the table"),
    "clock_timestamp": ("is volatile", "now() (the transaction's time)"),
}

# Functions with effects that take one argument of a row, array or "any" type: attribute
# notation (``(t).name``) would call them without a FuncCall. tests/test_functions.py derives
# this set from the catalog, so a PostgreSQL version that adds one fails until it is listed.
ATTRIBUTE_NOTATION_DENIED: frozenset[str] = frozenset(
    {"array_shuffle", "pg_restore_relation_stats", "pg_restore_attribute_stats"}
)

# Functions the parser makes out of SQL syntax: a refusal names what the model wrote.
SQL_SYNTAX: dict[str, str] = {
    "similar_to_escape": "SIMILAR TO",
    "overlaps": "OVERLAPS",
    "timezone": "AT TIME ZONE",
    "collation_for": "COLLATION FOR",
    "xmlexists": "XMLEXISTS",
    "pg_collation_for": "COLLATION FOR",
}

# Other dialects' functions models write, and PostgreSQL's spelling.
DIALECTS: dict[str, str] = {
    "ifnull": "coalesce(a, b)",
    "nvl": "coalesce(a, b)",
    "isnull": "x IS NULL / coalesce(a, b)",
    "if": "CASE WHEN ... THEN ... ELSE ... END",
    "iif": "CASE WHEN ... THEN ... ELSE ... END",
    "group_concat": "string_agg(x, ',')",
    "date_format": "to_char(ts, 'YYYY-MM-DD')",
    "str_to_date": "to_date(text, 'YYYY-MM-DD')",
    "curdate": "current_date",
    "curtime": "current_time",
    "getdate": "now()",
    "sysdate": "now()",
    "datediff": "date subtraction (d1::date - d2::date) or age(ts1, ts2)",
    "dateadd": "ts + interval '1 day'",
    "date_sub": "ts - interval '1 day'",
    "timestampdiff": "extract(epoch FROM ts1 - ts2)",
    "unix_timestamp": "extract(epoch FROM ts)",
    "from_unixtime": "to_timestamp(seconds)",
    "year": "extract(year FROM ts)",
    "month": "extract(month FROM ts)",
    "day": "extract(day FROM ts)",
    "week": "extract(week FROM ts)",
    "hour": "extract(hour FROM ts)",
    "dayofweek": "extract(dow FROM ts)",
    "len": "length(text)",
    "instr": "strpos(text, part)",
    "locate": "strpos(text, part)",
    "charindex": "strpos(text, part)",
    "substring_index": "split_part(text, delimiter, n)",
    "json_extract": "jsonb_extract_path(j, 'key') or j->'key'",
    "json_unquote": "j->>'key'",
    "rand": "random()",
    "ucase": "upper(text)",
    "lcase": "lower(text)",
    "truncate": "trunc(x, n)",
    "space": "repeat(' ', n)",
    "median": "percentile_cont(0.5) WITHIN GROUP (ORDER BY x)",
    "array_contains": "x = ANY(arr) or arr @> ARRAY[x]",
    "regexp_contains": "text ~ 'pattern'",
    "contains": "text ILIKE '%word%' or to_tsvector(text) @@ plainto_tsquery('word')",
}

# What a refused function's family does, and the way forward: (name prefix, why, instead).
_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("pg_advisory", "takes a lock", "a read takes no locks; drop the call"),
    ("pg_try_advisory", "takes a lock", "a read takes no locks; drop the call"),
    ("pg_notify", "sends a notification", "a read sends nothing; drop the call"),
    ("pg_sleep", "waits", "drop the call"),
    ("set_config", "changes a setting", "a read changes no settings; drop the call"),
    ("nextval", "advances a sequence", "a read changes nothing; use max(id) if you need the highest id"),
    ("setval", "changes a sequence", "propose writes for confirmation instead"),
    ("currval", "reads a sequence", "max(id) over the table"),
    ("lo_", "reaches large objects", "drop the call"),
    ("pg_read", "reads server files", "drop the call"),
    ("pg_ls_", "lists server files", "drop the call"),
    ("pg_logical", "writes to the WAL", "drop the call"),
    ("pg_cancel", "acts on another session", "drop the call"),
    ("pg_terminate", "acts on another session", "drop the call"),
    ("txid_", "assigns a transaction id", "drop the call"),
    ("pg_current_xact", "assigns a transaction id", "drop the call"),
    ("dblink", "connects to another database", "drop the call"),
    ("pg_", "reads or acts outside the query", "the schema is in information_schema and pg_class/pg_attribute"),
)


def _denied_entry(name: str) -> tuple[str, str] | None:
    if name in DENIED:
        return DENIED[name]
    for pattern, entry in DENIED.items():
        head, star, tail = pattern.partition("*")
        if star and name.startswith(head) and name.endswith(tail):
            return entry
    return None


def is_allowed(name: tuple[str, ...], *, read: bool = False) -> bool:
    """``name`` as the parser gives it: ``("lower",)`` or ``("pg_catalog", "lower")``. ``read``
    also allows the sampling functions, harmless on a read only."""
    if len(name) == 2 and name[0] == "pg_catalog":
        name = name[1:]
    if len(name) != 1:
        return False
    if read and name[0] in READ_ONLY_VOLATILE:
        return True
    return name[0] in ALLOWED_FUNCTIONS


def refusal(name: tuple[str, ...], *, syntax: bool = False) -> tuple[str, str, str]:
    """(what the model wrote, why it is refused, what to write instead) for a refused call."""
    bare = name[-1]
    shown = SQL_SYNTAX.get(bare, bare) if syntax else ".".join(name) + "()"
    entry = _denied_entry(bare)
    if entry is not None:
        return shown, entry[0], entry[1]
    if len(name) > 1 and name[0] not in ("pg_catalog",):
        return shown, "is not a built-in function", "the built-ins (PostgreSQL's own functions) compute values"
    if bare in DIALECTS:
        return shown, "is not a PostgreSQL function", DIALECTS[bare]
    for prefix, why, instead in _FAMILIES:
        if bare.startswith(prefix):
            return shown, why, instead
    return (
        shown,
        "is not on the read path's list of built-ins (no locks, notifications, settings, sequences, files or "
        "other sessions)",
        "the computing built-ins: text (lower, regexp_*, to_tsvector/websearch_to_tsquery), dates (date_trunc, "
        "extract, age), math, aggregates and window functions",
    )
