"""`cnnlab demo` commands."""
