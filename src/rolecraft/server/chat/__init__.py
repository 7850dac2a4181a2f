"""POST /v1/chat/completions: OpenAI's chat completions over characters, sessions and base models."""
