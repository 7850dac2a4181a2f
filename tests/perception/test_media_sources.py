"""Reading media from data: URLs, files and (only when allowed) remote URLs."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from rolecraft.errors import RolecraftError
from rolecraft.perception import read_media

PAYLOAD = b"\x89PNG\r\n\x1a\nnot really"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def local_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cat.png"
    server.shutdown()
    server.server_close()


def error_code(source: object, **kwargs: object) -> str:
    with pytest.raises(RolecraftError) as info:
        read_media(source, **kwargs)
    return info.value.code


def test_data_urls() -> None:
    url = "data:image/png;base64," + base64.b64encode(PAYLOAD).decode()
    media = read_media(url)
    assert (media.data, media.media_type) == (PAYLOAD, "image/png")
    assert read_media("data:text/plain,hi%20there").data == b"hi there"
    assert error_code("data:image/png;base64,@@@") == "invalid_media"
    assert error_code("data:image/png;base64") == "invalid_media"
    assert error_code(url, max_bytes=4) == "media_too_large"


def test_files_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(PAYLOAD)
    assert read_media(str(path)).data == PAYLOAD
    assert read_media(f"file://{path}").data == PAYLOAD
    assert read_media(PAYLOAD).data == PAYLOAD
    assert error_code(tmp_path / "missing.png") == "invalid_media"
    assert error_code(tmp_path) == "invalid_media"
    assert error_code(b"") == "invalid_media"
    assert error_code(path, max_bytes=3) == "media_too_large"
    assert error_code("ftp://example.invalid/a.png") == "invalid_media"
    assert error_code(str(path), allow_files=False) == "invalid_media"


def test_remote_urls_are_refused_offline(local_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert error_code(local_server, allow_remote=False) == "remote_media_offline"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert error_code(local_server) == "remote_media_offline"


def test_remote_urls_are_fetched_when_allowed(local_server: str) -> None:
    media = read_media(local_server, allow_remote=True)
    assert (media.data, media.media_type, media.origin) == (PAYLOAD, "image/png", local_server)
    assert error_code(local_server, allow_remote=True, max_bytes=4) == "media_too_large"
    closed = local_server.rsplit(":", 1)[0] + ":9/x.png"
    assert error_code(closed, allow_remote=True) == "remote_media_unreachable"
