from cnnlab.cli import app

app()
