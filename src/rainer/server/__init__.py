"""The HTTP server: the ASGI application and how it is run."""
