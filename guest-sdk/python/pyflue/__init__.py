"""PyFlue's agent-module names, so a module written for PyFlue runs unchanged."""

from flue import *  # noqa: F401,F403
from flue import __all__  # noqa: F401
from flue import sandboxes  # noqa: F401
