"""What can go wrong with the ledger, each said in the comms officer's words with the way out."""

from __future__ import annotations

from .records import Holder


class LedgerError(Exception):
    """The ledger cannot be used; the message says why and what to do."""


class LedgerDamaged(LedgerError):
    """The file is not a readable ledger (damaged, or not a ledger at all)."""


class LedgerGone(LedgerError):
    """The file was deleted or replaced while a send was writing to it."""


class LedgerFull(LedgerError):
    """The disk is full: answers that could not be written are kept for the next try."""


class IssueHeld(LedgerError):
    """Another send of the same issue is running."""

    def __init__(self, message: str, holder: Holder) -> None:
        super().__init__(message)
        self.holder = holder
