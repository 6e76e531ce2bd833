"""CLI command modules; each registers its Typer commands on :data:`cnnlab._cli._app.app`."""
