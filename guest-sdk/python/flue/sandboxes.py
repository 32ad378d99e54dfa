"""Which file tree the model's built-in file tools see."""


def local(*, cwd=None, env=None):
    """The host's disk, in the folder ``flue.toml`` binds to this agent."""
    return "local"


def virtual():
    """An in-memory file tree kept with the session."""
    return "virtual"


__all__ = ["local", "virtual"]
