"""NexusLeads Lab: a notebook-native assistant for the PLG Lead Sourcer database.

``%load_ext nexusleads_lab`` registers ``%nexus`` / ``%%nexus``; ``from nexusleads_lab import
Assistant`` gives the Python API. Importing this package stays cheap (no pandas, openai,
altair or psycopg) so loading the extension never slows a kernel down; the heavy parts load
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .agent.assistant import Assistant
    from .agent.turn import TurnResult
    from .session import NexusSession

_LAZY = {
    "Assistant": ("nexusleads_lab.agent.assistant", "Assistant"),
    "TurnResult": ("nexusleads_lab.agent.turn", "TurnResult"),
    "NexusSession": ("nexusleads_lab.session", "NexusSession"),
    "get_session": ("nexusleads_lab.session", "get_session"),
}

__all__ = ["Assistant", "NexusSession", "TurnResult", "__version__", "get_session", "load_ipython_extension"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nexusleads_lab' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ip) -> None:
    """``%load_ext nexusleads_lab``: register the magics and put ``nexus`` in the namespace."""
    from .magic import load

    load(ip)


def unload_ipython_extension(ip) -> None:
    from .magic import unload

    unload(ip)
