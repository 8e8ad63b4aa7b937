"""Pydantic preset models and the shipped preset files (issue 4)."""
