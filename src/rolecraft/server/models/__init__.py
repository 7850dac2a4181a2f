"""GET /v1/models: characters and the base model, as OpenAI model objects."""
