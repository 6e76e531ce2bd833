"""`cnnlab data` commands."""
