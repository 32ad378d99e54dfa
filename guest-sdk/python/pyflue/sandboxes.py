"""PyFlue's sandbox helpers."""

from flue.sandboxes import *  # noqa: F401,F403
from flue.sandboxes import __all__  # noqa: F401
