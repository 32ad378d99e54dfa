"""Write Flue agents in Python.

An agent is one module in ``agents/`` whose ``default`` is ``create_agent(init)``::

    from flue import create_agent, define_tool

    def build(ctx):
        return {
            "model": "anthropic/claude-haiku-4-5",
            "instructions": "Help the customer with their ticket.",
            "tools": [define_tool(
                "ticket_status",
                lambda args: f"ticket {ctx.id}: open",
                description="Return the status of the current ticket.",
            )],
        }

    default = create_agent(build)

The names and shapes are PyFlue's (``import pyflue`` works too), so an agent module
written for PyFlue runs unchanged. ``flue build`` compiles the module with this package
into a component of the ``flue:agent/agent`` world (``wit/agent.wit``). Everything the
module imports is imported once, at build time; import what tools need at the top of the
module.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Optional, Sequence, Union

from . import host, sandboxes
from .host import HostError

ThinkingLevel = Literal["off", "minimal", "low", "medium", "high", "xhigh"]
THINKING_LEVELS = ("off", "minimal", "low", "medium", "high", "xhigh")


@dataclass(frozen=True)
class AgentCreateContext:
    """What ``init`` is told about the instance being created."""

    id: str = "default"
    env: Mapping[str, str] = field(default_factory=dict)
    payload: Any = None
    agent: str = ""


@dataclass(frozen=True)
class ToolDef:
    """A tool the model may call: ``execute(args)`` gets the arguments as one dict."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    execute: Optional[Callable[..., Any]] = None


ToolDefinition = ToolDef


@dataclass(frozen=True)
class Skill:
    """A Markdown document the model can load when it needs it."""

    name: str
    description: str = ""
    instructions: str = ""


@dataclass(frozen=True)
class CompactionConfig:
    """When a long session is summarized: past ``context_window_tokens -
    reserve_tokens`` tokens of history (or ``max_tokens``), keeping ``keep_recent``
    turns verbatim."""

    enabled: bool = True
    context_window_tokens: Optional[int] = None
    reserve_tokens: Optional[int] = None
    keep_recent_tokens: Optional[int] = None
    model: Optional[str] = None
    max_tokens: Optional[int] = None
    keep_recent: Optional[int] = None


@dataclass(frozen=True)
class AgentProfile:
    """A partial configuration several agents share, or a subagent (with ``name``)."""

    name: Optional[str] = None
    description: Optional[str] = None
    model: Union[str, Literal[False], None] = None
    instructions: Optional[str] = None
    thinking_level: Optional[str] = None
    skills: Sequence[Any] = ()
    tools: Sequence[Any] = ()
    subagents: Sequence[Any] = ()
    compaction: Any = None
    agent: Optional[str] = None


@dataclass(frozen=True)
class AgentRuntimeConfig(AgentProfile):
    """What ``init`` returns, as an object instead of a dict."""

    profile: Optional[AgentProfile] = None
    cwd: Optional[str] = None
    sandbox: Any = None
    persist: Any = None


@dataclass(frozen=True)
class CreatedAgent:
    """An agent: ``initialize(ctx)`` returns its configuration."""

    initialize: Callable[..., Any]
    __pyflue_created_agent__: bool = True


PROFILE_FIELDS = (
    "name", "description", "model", "instructions", "thinking_level", "skills", "tools",
    "subagents", "compaction", "agent",
)
CONFIG_FIELDS = PROFILE_FIELDS + ("profile", "cwd", "sandbox", "persist")


def create_agent(initialize: Callable[..., Any]) -> CreatedAgent:
    """The agent whose ``initialize(ctx)`` (or ``initialize()``; sync or async) returns
    its configuration: a dict of ``CONFIG_FIELDS`` or an ``AgentRuntimeConfig``."""
    if not callable(initialize):
        raise ValueError("create_agent() requires an initializer function")
    return CreatedAgent(initialize)


def define_tool(
    name: str,
    execute: Optional[Callable[..., Any]] = None,
    *,
    description: str = "",
    parameters: Optional[Mapping[str, Any]] = None,
) -> ToolDef:
    """A tool. ``execute(args)`` (sync or async) returns a ``str`` or a JSON-able value;
    what it raises is the error the model sees."""
    if not isinstance(name, str) or not name:
        raise ValueError("define_tool() needs a non-empty name")
    if execute is not None and not callable(execute):
        raise ValueError(f"tool '{name}': execute must be callable")
    schema = dict(parameters) if parameters is not None else {"type": "object", "properties": {}}
    return ToolDef(name, description, schema, execute)


def define_agent_profile(profile: Union[AgentProfile, Mapping[str, Any]]) -> AgentProfile:
    """A profile from an ``AgentProfile`` or a dict of ``PROFILE_FIELDS``."""
    return as_profile(profile, "define_agent_profile()")


def as_profile(value: Any, where: str) -> AgentProfile:
    """``value`` as an ``AgentProfile``; a dict's unknown keys are an error."""
    if isinstance(value, AgentProfile):
        return value
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in PROFILE_FIELDS]
        if unknown:
            raise ValueError(f"{where}: unknown profile field '{unknown[0]}'")
        return AgentProfile(**value)
    raise ValueError(f"{where}: expected a profile (a dict or AgentProfile), got {value!r}")


createAgent = create_agent
defineTool = define_tool
defineAgentProfile = define_agent_profile
local = sandboxes.local

__all__ = [
    "AgentCreateContext", "AgentProfile", "AgentRuntimeConfig", "CompactionConfig",
    "CreatedAgent", "HostError", "Skill", "ThinkingLevel", "ToolDef", "ToolDefinition",
    "create_agent", "createAgent", "define_agent_profile", "defineAgentProfile",
    "define_tool", "defineTool", "host", "local", "sandboxes",
]
