"""Database layer: the active database, its schema, demo data, and the SQL engine."""

from .database import Database, get_database, open_database, set_database
from .engine import Engine, QueryResult, WriteResult
from .errors import QueryError, mask_url

__all__ = [
    "Database",
    "Engine",
    "QueryError",
    "QueryResult",
    "WriteResult",
    "get_database",
    "mask_url",
    "open_database",
    "set_database",
]
