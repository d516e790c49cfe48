"""The functions a statement from the model may call: a reviewed allow-list of built-ins.

Every name here is an immutable or stable PostgreSQL built-in that only computes a value
from its arguments or the transaction's snapshot: no sessions, locks, files, sequences,
notifications, WAL or other backends. A call to anything else (found by PostgreSQL's own
parser, so quoting and schema qualification change nothing) is refused before the
statement reaches the server. Adding a name is a reviewed change: check its volatility and
what it touches first.
"""

from __future__ import annotations

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    """
    abs ceil ceiling floor round trunc sign mod power sqrt cbrt exp ln log log10 div
    width_bucket
    length char_length character_length octet_length bit_length lower upper initcap
    btrim ltrim rtrim lpad rpad substr substring left right position strpos replace
    translate split_part concat concat_ws format reverse repeat starts_with regexp_replace
    regexp_match regexp_matches regexp_like regexp_count regexp_substr regexp_split_to_array
    md5 chr ascii to_hex quote_literal quote_ident to_char to_number to_date to_timestamp
    string_to_array array_to_string
    now transaction_timestamp statement_timestamp
    date_trunc date_part extract age make_date make_time make_timestamp make_timestamptz
    make_interval justify_days justify_hours justify_interval isfinite date_bin timezone
    count sum avg min max bool_and bool_or every string_agg array_agg jsonb_agg json_agg
    jsonb_object_agg json_object_agg percentile_cont percentile_disc mode stddev stddev_pop
    stddev_samp variance var_pop var_samp corr covar_pop covar_samp
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value
    nth_value
    jsonb_build_object json_build_object jsonb_build_array json_build_array to_jsonb to_json
    jsonb_set jsonb_insert jsonb_strip_nulls jsonb_typeof json_typeof jsonb_array_length
    json_array_length jsonb_extract_path jsonb_extract_path_text jsonb_object_keys
    jsonb_array_elements jsonb_array_elements_text jsonb_each jsonb_each_text jsonb_path_exists
    jsonb_path_query jsonb_path_query_first jsonb_pretty
    array_append array_prepend array_cat array_remove array_replace array_length array_position
    array_positions cardinality unnest array_upper array_lower array_dims generate_subscripts
    generate_series array_to_json row_to_json json_strip_nulls jsonb_object jsonb_exists
    overlay normalize is_normalized format_type
    """.split()
)

# Functions with effects that take one argument of a row, array or "any" type: attribute
# notation (``(t).name``) would call them without a FuncCall. tests/test_functions.py derives
# this set from the catalog, so a PostgreSQL version that adds one fails until it is listed.
ATTRIBUTE_NOTATION_DENIED: frozenset[str] = frozenset(
    {"array_shuffle", "pg_restore_relation_stats", "pg_restore_attribute_stats"}
)


def is_allowed(name: tuple[str, ...]) -> bool:
    """``name`` as the parser gives it: ``("lower",)`` or ``("pg_catalog", "lower")``."""
    if len(name) == 2 and name[0] == "pg_catalog":
        name = name[1:]
    return len(name) == 1 and name[0] in ALLOWED_FUNCTIONS
