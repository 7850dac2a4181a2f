"""Stored personas and stand-alone lorebooks: the shapes are fixed now, the stores come with their rooms."""
