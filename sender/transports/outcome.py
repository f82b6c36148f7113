"""Moved to base.py; kept while the SMTP package moves over."""

from .base import Job, Outcome, State, TransportError

__all__ = ["Job", "Outcome", "State", "TransportError"]
