"""Ollama's model routes: /api/tags lists what /v1/models lists (same ids, same order), /api/show describes one
(its chat template, context length, what it can take), /api/version says which rolecraft answers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from rolecraft import __version__
from rolecraft.backends.templated import TemplatedBackend
from rolecraft.conversation import Engine
from rolecraft.server.models.protocol import Model
from rolecraft.server.models.serving import get_model, list_models

FAMILY = {"character": "rolecraft-character", "base_model": "base", "adapter": "lora"}


def _details(model: Model, engine: Engine) -> dict[str, Any]:
    kind, settings = model.rolecraft.kind, engine.settings
    return {"parent_model": "" if kind == "base_model" else settings.model,
            "format": "gguf" if settings.backend == "llama_cpp" else "", "family": FAMILY[kind],
            "families": [FAMILY[kind]], "parameter_size": "", "quantization_level": ""}


def _entry(model: Model, engine: Engine) -> dict[str, Any]:
    modified = datetime.fromtimestamp(model.created, UTC).isoformat().replace("+00:00", "Z")
    digest = hashlib.sha256(f"{model.rolecraft.kind}:{model.id}:{model.created}".encode()).hexdigest()
    return {"name": model.id, "model": model.id, "modified_at": modified, "size": 0, "digest": digest,
            "details": _details(model, engine)}


def tags(engine: Engine, owner: str | None) -> dict[str, Any]:
    """GET /api/tags."""
    return {"models": [_entry(m, engine) for m in list_models(engine, owner).data]}


def show(engine: Engine, model_id: str, owner: str | None) -> dict[str, Any]:
    """POST /api/show (runs on the model thread: it reads the loaded model)."""
    model = get_model(engine, model_id, owner)
    backend, settings = engine.backend, engine.settings
    entry = _entry(model, engine)
    parameters = "\n".join(f"{name} {getattr(settings, name)}"
                           for name in ("temperature", "top_k", "top_p", "repeat_penalty"))
    capabilities = ["completion", "vision"]  # pictures are perceived for any model, natively where it can
    template = backend.template.source if isinstance(backend, TemplatedBackend) else ""
    return {"modelfile": f"FROM {settings.model}\n", "parameters": parameters, "template": template,
            "details": entry["details"], "modified_at": entry["modified_at"], "capabilities": capabilities,
            "model_info": {"general.architecture": backend.name, "general.basename": settings.model,
                           f"{backend.name}.context_length": backend.context_size}}


def version() -> dict[str, str]:
    return {"version": __version__}
