"""The HTTP server (`rolecraft serve`): OpenAI-compatible endpoints plus native REST, over the engine.

One folder per endpoint family (chat, models, audio, characters, sessions,
library), each with a router (routes only), a protocol (pydantic request and
response shapes, validated at the edge) and serving logic that calls the
engine. The engine never imports from here.
"""
