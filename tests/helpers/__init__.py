"""Fixtures and helpers shared by the test rooms and bench/ (fixture modules are registered in tests/conftest.py)."""
