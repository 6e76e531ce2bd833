"""``cnnlab serve``: where it binds and what it warns; the upload cap, watched at the ASGI level."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnlab._cli.serve import is_loopback
from cnnlab.cli import app


@pytest.fixture
def bound(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Run ``cnnlab serve`` up to uvicorn, recording the address of the socket it would serve on."""
    import uvicorn

    seen: list[tuple[Any, ...]] = []

    def run(self: Any, sockets: list[socket.socket] | None = None) -> None:
        assert sockets
        seen.append(sockets[0].getsockname())
        sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return seen


def test_binds_127_0_0_1_by_default_and_says_where(sample_run: Path, bound: list[tuple[Any, ...]]) -> None:
    result = CliRunner().invoke(app, ["serve", str(sample_run), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert bound[0][0] == "127.0.0.1" and bound[0][1] > 0
    assert f"at http://127.0.0.1:{bound[0][1]}/" in result.output and "warning" not in result.output
    lines = result.output.splitlines()  # the model load is said before it happens, then where it serves
    loading = next(i for i, line in enumerate(lines) if line == f"loading {sample_run} ...")
    assert loading < next(i for i, line in enumerate(lines) if line.startswith("serving "))


def test_another_host_is_bound_with_a_warning(sample_run: Path, bound: list[tuple[Any, ...]]) -> None:
    result = CliRunner().invoke(app, ["serve", str(sample_run), "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert bound[0][0] == "0.0.0.0"
    assert "warning: --host 0.0.0.0 makes the page reachable from other machines" in result.output


def test_a_port_in_use_is_one_line_exit_2(sample_run: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(sample_run), "--port", str(port)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")
    for bad, flag in (("-1", "--port"), ("70000", "--port")):
        r = CliRunner().invoke(app, ["serve", str(sample_run), "--port", bad])
        assert r.exit_code == 2 and flag in r.output


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.10", "example.org"]))


async def _asgi_post(web: Any,
                     chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, Any, int]:
    """POST /api/predict through the ASGI app; (status, JSON body, chunks the app pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await web(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_an_oversized_body_is_refused_before_it_is_read_whole(sample_app: Any) -> None:
    boundary = b"xyz"
    head = b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n" \
           b"Content-Type: image/png\r\n\r\n"
    chunk = 1 << 20
    chunks = [head] + [b"\0" * chunk] * 30 + [b"\r\n--xyz--\r\n"]  # a 30 MB upload
    ctype = (b"content-type", b"multipart/form-data; boundary=" + boundary)
    total = sum(map(len, chunks))
    # Content-Length says it: 413 at once, not one byte read
    status, body, pulled = asyncio.run(_asgi_post(sample_app, chunks, [ctype, (b"content-length",
                                                                              str(total).encode())]))
    assert status == 413 and "10 MB" in body["detail"] and pulled == 0
    # No length (chunked): the body is read up to the cap, then refused
    status, body, pulled = asyncio.run(_asgi_post(sample_app, chunks, [ctype]))
    assert status == 413 and "10 MB" in body["detail"]
    assert pulled <= 12 < len(chunks)  # 10 MB + the form's allowance, in 1 MB chunks


def test_the_upload_cap_is_configurable(sample_run: Path) -> None:
    from fastapi.testclient import TestClient

    from cnnlab.serve import create_app

    with TestClient(create_app(sample_run, max_upload_mb=0.5)) as c:
        assert c.get("/api/info").json()["max_upload_bytes"] == 512 * 1024
        r = c.post("/api/predict", files={"file": ("a.png", b"\0" * (600 * 1024), "image/png")})
        assert r.status_code == 413 and "0.5 MB" in r.json()["detail"]
