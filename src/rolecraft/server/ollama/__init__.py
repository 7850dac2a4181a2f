"""Ollama API: /api/chat, /api/generate, /api/tags, /api/show, /api/version (what Open WebUI speaks)."""
