"""ASGI entry point for uvicorn/gunicorn workers: ``uvicorn api.asgi:app``."""
from .app import create_app

app = create_app()
