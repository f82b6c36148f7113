"""A send, from plan to report: the one place that decides who gets what, and how.

- ``plan``: who gets which version; everything checked before anyone gets anything.
- ``eligibility``: who is sent to this run (``--resend``, ``--retry-failed``), for
  the summary and the ledger's snapshot alike.
- ``session``: the transport chosen, the ledger opened, everyone delivered and
  recorded, the archive updated; a ``SendReport`` to show.
- ``testsend``: a ``[TEST]`` copy of a person's version, to any address.

The command line and the preview are shells over these functions.
"""

from __future__ import annotations

from .eligibility import Eligibility, Standing, ledger_states, standing
from .plan import SendPlan, outbox_folder, plan_send
from .session import (
    PicturesNotPublished,
    PreflightError,
    SendReport,
    check_published,
    open_transport_for,
    ready,
    send,
    verp,
)
from .testsend import NotOnList, TestReport, send_test, stand_in

__all__ = [
    "Eligibility",
    "NotOnList",
    "PicturesNotPublished",
    "PreflightError",
    "SendPlan",
    "SendReport",
    "Standing",
    "TestReport",
    "check_published",
    "ledger_states",
    "open_transport_for",
    "outbox_folder",
    "plan_send",
    "ready",
    "send",
    "send_test",
    "stand_in",
    "standing",
    "verp",
]
