"""What a character remembers: tracked dialogue state, rolling summaries, long-term memory.

Each part returns text or messages for the context builder, never whole prompts.
"""
