"""KoboldCpp API: /api/v1/generate, /api/extra/generate/stream, tokencount, abort, model, version."""
