"""`cnnlab interpret` commands."""
