"""Generation backends behind one registry and one streaming method.

Built-in backends register through the same `register` decorator that
third-party packages use (or via the `rolecraft.backends` entry point group).
Heavy libraries are imported inside each backend, with an install hint.
"""

from rolecraft.backends.base import Backend, Capabilities, SamplingParams, StreamEvent
from rolecraft.backends.registry import available_backends, create_backend, register

__all__ = [
    "Backend",
    "Capabilities",
    "SamplingParams",
    "StreamEvent",
    "available_backends",
    "create_backend",
    "register",
]
