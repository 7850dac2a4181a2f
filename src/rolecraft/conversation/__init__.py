"""The turn pipeline: ties characters, store, context builder and backend together.

Knows nothing of HTTP, CLI or UI; those call `Engine` and `ChatSession`.
"""

from rolecraft.conversation.engine import Engine
from rolecraft.conversation.session import ChatSession, Turn

__all__ = ["ChatSession", "Engine", "Turn"]
