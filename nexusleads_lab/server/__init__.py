"""``nexus-lab serve``: the original web app's ``/ws/codex`` protocol and ``/api/chat/conversations``
over the same ``Assistant``, database and conversation store the notebook uses."""

from .app import create_app

__all__ = ["create_app"]
