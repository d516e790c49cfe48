"""The skills (``skills/*/SKILL.md``, found as the built-in assistant finds them) as MCP resources,
``skill://<name>/SKILL.md``, and as prompts of the same name, so an agent reads the schema guide
the way the built-in assistant does."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, UserMessage
from mcp.server.mcpserver.resources import FunctionResource

from ..agent.skills import Skill, discover_skills


def add_skills(server: MCPServer) -> None:
    for skill in discover_skills():
        server.add_resource(
            FunctionResource(
                uri=skill_uri(skill),
                name=skill.name,
                description=" ".join(skill.description.split()),
                mime_type="text/markdown",
                fn=skill.text,
            )
        )
        server.add_prompt(
            Prompt(
                name=skill.name,
                description=" ".join(skill.description.split()),
                fn=lambda skill=skill: [UserMessage(f"Use this guide:\n\n{skill.body()}")],
            )
        )


def skill_uri(skill: Skill) -> str:
    return f"skill://{skill.name}/SKILL.md"
