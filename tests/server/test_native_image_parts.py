"""The openai_compat backend sends pictures as image_url parts to a real OpenAI-compatible server.

The server here is `rolecraft serve`; it parses the parts and perceives the picture, which
shows in the prompt it reports in `usage` (the same words cost fewer tokens without it).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image
from server_helpers import Server

from rolecraft.backends import create_backend
from rolecraft.backends.base import SamplingParams
from rolecraft.messages import Message
from rolecraft.settings import Settings


def _photo() -> str:
    from skimage import data as skdata

    out = io.BytesIO()
    Image.fromarray(skdata.chelsea()).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _usage(backend, messages: list[Message]) -> int:
    events = list(backend.stream(messages, SamplingParams(max_tokens=4, temperature=0.0)))
    return events[-1].prompt_tokens


def test_pictures_travel_as_image_url_parts(server: Server, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, backend="openai_compat", base_url=f"{server.url}/v1", model="smollm2",
                        api_key=server.keys["alice"], vision=True)
    backend = create_backend(settings)
    assert backend.capabilities.images
    plain = _usage(backend, [Message("user", "What is in this picture?")])
    seen = _usage(backend, [Message("user", "What is in this picture?", images=(_photo(),))])
    assert seen > plain + 20, (plain, seen)
