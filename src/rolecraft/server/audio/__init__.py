"""OpenAI's audio endpoints (speech, transcriptions) and the spoken form of stored replies."""
