"""The doors: FastAPI app, REST v1, protocol endpoints, CLI, authentication, error mapping."""
