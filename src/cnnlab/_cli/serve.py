"""`cnnlab serve`: the web page for predictions, heatmaps and the layer explorer, over one model.

Heavy imports (torch, FastAPI, uvicorn) happen inside the command.
"""

from __future__ import annotations

import ipaddress
import socket

import typer

from ..errors import ArgumentError, CnnlabError
from ._app import app, console

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    run: str = typer.Argument(..., metavar="RUN",
                              help="A run folder (or a model name, spec or weights file)."),
    host: str = typer.Option(LOOPBACK, "--host", help="Address to bind; only this machine by default."),
    port: int = typer.Option(8000, "--port", help="TCP port (0: any free one)."),
    max_upload_mb: float = typer.Option(10.0, "--max-upload-mb", help="Largest photo accepted, in MB."),
) -> None:
    """Serve a page at http://HOST:PORT/: drop a photo, see the top classes, the heatmap and the layers.

    The JSON API is beside it (/api/info, /api/predict, /api/explain, /api/features, /api/unit;
    schema at /openapi.json). Ctrl+C stops the server.
    """
    if not 0 <= port <= 65535:
        raise ArgumentError(f"{port}: use 0..65535 (0: any free port)", param="port")
    if max_upload_mb <= 0:  # create_app says so too, but only after the model has loaded
        raise ArgumentError("must be positive, e.g. 10", param="max_upload_mb")
    if not is_loopback(host):
        console.print(f"warning: --host {host} makes the page reachable from other machines, with no "
                      "password; anyone who can reach it can use the model")
    import uvicorn

    from ..serve import create_app
    from ..source import resolve_model

    sock = _listen(host, port)  # before the model loads: a port in use is one line, at once
    console.print(f"loading {run} ...", markup=False, highlight=False, soft_wrap=True)
    source = resolve_model(run)
    for notice in source.notices:
        console.print(f"note: {notice}")
    web = create_app(source, max_upload_mb=max_upload_mb)
    bound = sock.getsockname()[1]
    name = f"[{host}]" if ":" in host else host
    console.print(f"serving {source.label} at http://{name}:{bound}/ (Ctrl+C stops)", soft_wrap=True)
    config = uvicorn.Config(web, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), or a one-line error naming them."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as err:
        raise CnnlabError(f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --port, "
                          "or 0 for any free one") from None
    return sock
