"""`cnnlab models` commands."""
