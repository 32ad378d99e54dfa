"""What the host offers a running tool: model calls, session history, durable
per-instance state and logging. Each call raises ``HostError`` when the host refuses."""

import json
from dataclasses import dataclass

from componentize_py_types import Err
from wit_world.imports import log as wit_log
from wit_world.imports import model as wit_model
from wit_world.imports import session as wit_session
from wit_world.imports import types as wit


class HostError(Exception):
    """A failed host call; ``kind`` is ``invalid``, ``refused`` or ``unavailable``."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    input_tokens: int
    output_tokens: int


_KINDS = {
    wit.HostError_Invalid: "invalid",
    wit.HostError_Refused: "refused",
    wit.HostError_Unavailable: "unavailable",
}


def _call(function, *args):
    try:
        return function(*args)
    except Err as e:
        raise HostError(_KINDS.get(type(e.value), "error"), e.value.value) from None


def complete(prompt: str, system: str = None, model: str = None) -> Completion:
    """Asks the model one question; ``model`` (``provider/model``) defaults to the agent's."""
    request = wit_model.CompletionRequest(model=model, system=system, prompt=prompt)
    answer = _call(wit_model.complete, request)
    usage = answer.usage
    return Completion(answer.text, answer.model, usage.input_tokens, usage.output_tokens)


def history(session: str = "default") -> list:
    """The session's messages, oldest first, as dicts with ``role`` and ``content``."""
    return [_message(m) for m in _call(wit_session.history, session)]


def get_state(key: str):
    """A value this instance stored with ``set_state``, or ``None``."""
    return _call(wit_session.state_get, key)


def set_state(key: str, value: str) -> None:
    """Stores a value for this instance; it outlives restarts unless ``persist`` is off."""
    _call(wit_session.state_set, key, str(value))


_LEVELS = {
    "trace": wit.LogLevel.TRACE,
    "debug": wit.LogLevel.DEBUG,
    "info": wit.LogLevel.INFO,
    "warn": wit.LogLevel.WARN,
    "warning": wit.LogLevel.WARN,
    "error": wit.LogLevel.ERROR,
}


def log(message: str, level: str = "info") -> None:
    """A line in the host's log, tagged with agent, instance and session."""
    wit_log.log(_LEVELS.get(level, wit.LogLevel.INFO), str(message))


def _message(m) -> dict:
    if isinstance(m, wit.Message_Assistant):
        calls = [
            {"id": c.id, "name": c.name, "arguments": json.loads(c.arguments)}
            for c in m.value.tool_calls
        ]
        return {"role": "assistant", "content": m.value.text, "tool_calls": calls}
    if isinstance(m, wit.Message_Tool):
        t = m.value
        return {
            "role": "tool", "content": t.content, "tool_call_id": t.tool_call_id,
            "name": t.name, "is_error": t.is_error,
        }
    role = "summary" if isinstance(m, wit.Message_Summary) else "user"
    return {"role": role, "content": m.value}


__all__ = ["Completion", "HostError", "complete", "get_state", "history", "log", "set_state"]
