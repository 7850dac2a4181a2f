"""rolecraft: an offline-first, multimodal role-playing and multi-turn dialogue engine."""

__version__ = "0.1.0"
