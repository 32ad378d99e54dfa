"""The component's exports for a Python agent: the author's module behind the
``flue:agent/agent`` world. Every error leaves as the export's ``Err`` string: any other
exception out of an export would trap and end the instance."""

import asyncio
import asyncio.base_events
import inspect
import json
import time
import traceback
from typing import Any, Mapping

import wit_world
from componentize_py_types import Err
from wit_world.imports import types as wit

from . import (
    CONFIG_FIELDS, THINKING_LEVELS, AgentCreateContext, AgentProfile, CompactionConfig,
    as_profile,
)

_NO_PARAMETERS = {"type": "object", "properties": {}}


def world(module, file_name: str) -> type:
    """The ``WitWorld`` class componentize-py exports, serving ``module``'s agent (its
    ``default``, else its ``agent``); ``file_name`` is the author's file, for messages."""
    agent = getattr(module, "default", None) or getattr(module, "agent", None)
    if not getattr(agent, "__pyflue_created_agent__", False):
        raise TypeError(
            f"{file_name} must set `default = create_agent(init)` "
            "(from flue or pyflue import create_agent)"
        )
    handlers = {}

    class WitWorld(wit_world.WitWorld):
        def create(self, ctx: wit.CreateContext) -> wit.AgentConfig:
            try:
                context = AgentCreateContext(
                    id=ctx.id, env=dict(ctx.env), payload=_payload(ctx.payload), agent=ctx.agent
                )
                config = _resolve(_initialize(agent.initialize, context))
                handlers.clear()
                return _agent_config(config, handlers)
            except BaseException as e:
                raise Err(_describe(e, module, file_name))

        def call_tool(self, name: str, args: str) -> str:
            try:
                tool = handlers.get(name)
                if tool is None or tool.execute is None:
                    raise LookupError(f"this agent has no tool named '{name}'")
                arguments = json.loads(args) if args.strip() else {}
                return _text(_resolve(_execute(tool.execute, arguments)))
            except BaseException as e:
                raise Err(_describe(e, module, file_name))

    return WitWorld


def _initialize(initialize, context):
    takes_ctx, _ = _parameters(initialize)
    return initialize(context) if takes_ctx else initialize()


def _execute(execute, arguments):
    _, takes_signal = _parameters(execute)
    return execute(arguments, signal=None) if takes_signal else execute(arguments)


def _parameters(function):
    """Whether ``function`` takes a positional argument, and a ``signal`` one. Read from
    its code object where it has one: ``inspect.signature`` costs a tool call more than
    the tool itself."""
    code = getattr(function, "__code__", None)
    if code is None:
        parameters = inspect.signature(function).parameters.values()
        positional = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in parameters
        )
        return positional, any(p.name == "signal" for p in parameters)
    bound = 1 if inspect.ismethod(function) else 0
    named = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    positional = code.co_argcount > bound or bool(code.co_flags & inspect.CO_VARARGS)
    return positional, "signal" in named


def _payload(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _text(result) -> str:
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    if isinstance(result, tuple):
        result = list(result)
    return json.dumps(result, default=str)


def _describe(error: BaseException, module, file_name: str) -> str:
    """``Type: message``, with the author's line where the error came from."""
    frames = [
        f for f in traceback.extract_tb(error.__traceback__) if f.filename == module.__file__
    ]
    where = f" (at {file_name} line {frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


class _NoSelector:
    def select(self, timeout=None):
        if timeout:
            time.sleep(timeout)
        return []


class _Loop(asyncio.base_events.BaseEventLoop):
    """An event loop with no sockets (the sandbox has none): it runs coroutines whose
    I/O is the host's synchronous imports."""

    def __init__(self):
        super().__init__()
        self._selector = _NoSelector()

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass


def _resolve(value):
    """``value``, awaited first if it is awaitable (an ``async def`` init or tool)."""
    if not inspect.isawaitable(value):
        return value
    loop = _Loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(value)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _fields(value, allowed, where) -> dict:
    if isinstance(value, AgentProfile):
        return {k: getattr(value, k) for k in allowed if hasattr(value, k)}
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise ValueError(f"{where} returned unknown runtime config field '{unknown[0]}'")
        return dict(value)
    raise ValueError(f"{where} must return a dict of config fields or an AgentRuntimeConfig")


def _agent_config(config, handlers) -> wit.AgentConfig:
    c = _fields(config, CONFIG_FIELDS, "create_agent() initializer")
    profile = c.get("profile")
    return wit.AgentConfig(
        profile=_profile(as_profile(profile, "profile"), handlers) if profile else None,
        model=_model(c.get("model")),
        instructions=_str(c.get("instructions"), "instructions"),
        thinking_level=_thinking(c.get("thinking_level")),
        tools=_tools(c.get("tools"), handlers),
        skills=_skills(c.get("skills")),
        subagents=[_subagent(s, handlers) for s in c.get("subagents") or ()],
        compaction=_compaction(
            c["compaction"] if c.get("compaction") is not None else _profile_compaction(profile)
        ),
        sandbox=_sandbox(c.get("sandbox")),
        cwd=_str(c.get("cwd"), "cwd"),
        persist=None if c.get("persist") is None else bool(c.get("persist")),
    )


def _profile(p: AgentProfile, handlers) -> wit.Profile:
    return wit.Profile(
        name=_str(p.name, "profile name"),
        model=_model(p.model),
        instructions=_str(p.instructions, "profile instructions"),
        thinking_level=_thinking(p.thinking_level),
        tools=_tools(p.tools, handlers),
        skills=_skills(p.skills),
        subagents=[_subagent(s, handlers) for s in p.subagents or ()],
    )


def _profile_compaction(profile):
    """A profile's compaction, which applies when the agent sets none (as in PyFlue)."""
    return as_profile(profile, "profile").compaction if profile else None


def _subagent(value, handlers) -> wit.Subagent:
    p = as_profile(value, "subagents")
    if not p.name:
        raise ValueError("every subagent needs a name")
    return wit.Subagent(
        name=_str(p.name, "subagent name"),
        description=_str(p.description, "subagent description") or "",
        agent=_str(p.agent, "subagent agent"),
        model=_model(p.model),
        instructions=_str(p.instructions, "subagent instructions"),
        thinking_level=_thinking(p.thinking_level),
        tools=_tools(p.tools, handlers),
        skills=_skills(p.skills),
    )


def _model(value):
    if value is False or value is None or value == "":
        return None
    return _str(value, "model")


def _str(value, field):
    """``value`` if it is a string (or None): the component cannot carry anything else."""
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{field} must be a string, not {type(value).__name__} {value!r}")


def _u32(value, field):
    """``value`` if it is a whole number that fits in 32 bits unsigned (or None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ValueError(f"{field} must be a whole number from 0 to 2**32 - 1, not {value!r}")
    return value


_LEVELS = {
    "off": wit.ThinkingLevel.OFF,
    "minimal": wit.ThinkingLevel.MINIMAL,
    "low": wit.ThinkingLevel.LOW,
    "medium": wit.ThinkingLevel.MEDIUM,
    "high": wit.ThinkingLevel.HIGH,
    "xhigh": wit.ThinkingLevel.HIGH,
}


def _thinking(level):
    if level is None:
        return None
    if level not in _LEVELS:
        raise ValueError(f"thinking_level must be one of: {', '.join(THINKING_LEVELS)}")
    return _LEVELS[level]


def _sandbox(value):
    if value is None:
        return None
    if value is False or value == "none":
        return wit.Sandbox.NONE
    if value == "virtual":
        return wit.Sandbox.VIRTUAL
    if value == "local":
        return wit.Sandbox.LOCAL
    raise ValueError(f"sandbox must be local(), virtual(), 'none' or False, not {value!r}")


def _compaction(value):
    if value is None:
        return None
    if value is False:
        return wit.Compaction(enabled=False, max_tokens=None, keep_recent=None)
    c = value if isinstance(value, CompactionConfig) else CompactionConfig(**value)
    max_tokens = c.max_tokens
    if max_tokens is None and c.context_window_tokens is not None:
        reserve = PYFLUE_RESERVE_TOKENS if c.reserve_tokens is None else c.reserve_tokens
        max_tokens = max(c.context_window_tokens - reserve, 0)
    return wit.Compaction(
        enabled=bool(c.enabled),
        max_tokens=_u32(max_tokens, "compaction max_tokens"),
        keep_recent=_u32(c.keep_recent, "compaction keep_recent"),
    )


# PyFlue's default room kept for the answer when compaction is given a context window.
PYFLUE_RESERVE_TOKENS = 16384


def _tools(tools, handlers) -> list:
    defs = []
    for index, tool in enumerate(tools or ()):
        name = getattr(tool, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"tools[{index}] must come from define_tool(name, execute, ...)")
        handlers[name] = tool
        parameters = getattr(tool, "parameters", None) or _NO_PARAMETERS
        defs.append(wit.ToolDef(
            name=name,
            description=_str(getattr(tool, "description", ""), f"tool '{name}' description") or "",
            parameters=json.dumps(parameters),
        ))
    return defs


def _skills(skills) -> list:
    out = []
    for s in skills or ():
        get = s.get if isinstance(s, Mapping) else (lambda k, d=None, s=s: getattr(s, k, d))
        name = _str(get("name"), "skill name")
        if not name:
            raise ValueError("every skill needs a name")
        body = _str(get("instructions") or get("body"), f"skill '{name}' instructions") or ""
        description = _str(get("description"), f"skill '{name}' description") or ""
        out.append(wit.Skill(name=name, description=description, body=body))
    return out
