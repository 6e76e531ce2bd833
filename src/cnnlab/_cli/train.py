"""`cnnlab train` commands."""
