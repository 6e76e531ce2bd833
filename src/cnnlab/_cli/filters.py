"""`cnnlab filters` commands."""
