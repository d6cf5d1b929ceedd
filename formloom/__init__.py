"""Formloom: forms and workflows defined as data."""
from __future__ import annotations

__version__ = "0.1.0"


def create_app(test_config: dict | None = None):
    """Build the Flask application (see :func:`formloom.platform.app.create_app`)."""
    from formloom.platform.app import create_app as _create_app

    return _create_app(test_config)
