"""Running relay: the ASGI apps, uvicorn servers, worker processes and their supervisor,
TLS, and the checks run before serving."""
