"""OpenAI text completions (POST /v1/completions) and what every text-completion family shares."""
