"""`cnnlab serve`: the web page for predictions, heatmaps and the layer explorer, over one model.

Heavy imports (torch, FastAPI, uvicorn) happen inside the command.
"""

from __future__ import annotations

import typer

from ..errors import CnnlabError
from ..serve.listen import LOOPBACK, exposure_warning, is_loopback  # noqa: F401  (is_loopback: public here too)
from ._app import app, console


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
    warning = exposure_warning(host)
    if warning is not None:
        console.print(CnnlabError(warning).cli_message(), markup=False, highlight=False)
    import uvicorn

    from ..serve import create_app
    from ..serve.listen import listen
    from ..source import resolve_model

    sock = listen(host, port, max_upload_mb=max_upload_mb)  # before the model loads: one line, at once
    source = resolve_model(run)
    for notice in source.notices:
        console.print(f"note: {notice}", markup=False, highlight=False)
    web = create_app(source, max_upload_mb=max_upload_mb)
    bound = sock.getsockname()[1]
    name = f"[{host}]" if ":" in host else host
    console.print(f"serving {source.label} at http://{name}:{bound}/ (Ctrl+C stops)", soft_wrap=True)
    config = uvicorn.Config(web, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])

