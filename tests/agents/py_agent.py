"""A test agent written as a PyFlue agent module, with tools that use the host and
tools that misbehave."""

from flue import HostError, host
from pyflue import create_agent, define_agent_profile, define_tool

base = define_agent_profile({
    "instructions": "Answer from the profile.",
    "tools": [define_tool("shared", lambda args: "from the profile", description="A profile tool.")],
})


async def forecast(args):
    return {"city": args.get("city", "?"), "forecast": "sunny"}


def fail(args):
    raise ValueError("the ticket system is down")


def spin(args):
    while True:
        pass


def hog(args):
    chunks = []
    while True:
        chunks.append(bytearray(1 << 20))


def remember(args):
    host.set_state(args["key"], args["value"])
    host.log("stored a value")
    return "stored"


def ask(args):
    answer = host.complete(args["question"], system="Answer briefly.")
    return f"{answer.text} ({answer.model}, {answer.output_tokens} tokens out)"


def bad_model(args):
    try:
        host.complete("hi", model="nowhere/none")
    except HostError as e:
        return f"{e.kind}: {e.message}"
    return "no error"


def build(ctx):
    ticket = ctx.id
    return {
        "profile": base,
        "model": "anthropic:claude-haiku-4-5",
        "thinking_level": "low",
        "tools": [
            define_tool("whoami", lambda args: ticket, description="This instance's id."),
            define_tool("forecast", forecast, description="An async tool.",
                        parameters={"type": "object", "properties": {"city": {"type": "string"}}}),
            define_tool("fail", fail, description="Raises."),
            define_tool("spin", spin, description="Loops forever."),
            define_tool("hog", hog, description="Allocates without bound."),
            define_tool("remember", remember, description="Stores a value."),
            define_tool("recall", lambda args: host.get_state(args["key"]) or "nothing",
                        description="Reads a stored value."),
            define_tool("ask", ask, description="Asks the model."),
            define_tool("bad_model", bad_model, description="Asks a model that is not there."),
            define_tool("history", lambda args: len(host.history(args.get("session", "s"))),
                        description="Counts a session's messages."),
        ],
    }


default = create_agent(build)
