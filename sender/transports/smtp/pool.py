"""The connections of one send: a thread each, sharing the work, the rate limit and retries.

Each connection is a thread with its own ``smtplib`` session (measured on this
machine: threads beat aiosmtplib). The caller's jobs are read lazily in the
calling thread into a small bounded queue, so a generator over 100,000 people
is never held in memory and the caller's own objects (a SQLite cursor, say)
are only touched from the thread that made them.

What happens to a message:

* 2xx after the data: ``sent``.
* 5xx at any step: ``failed``, not tried again; ``RSET`` and carry on.
* 4xx: tried again within the run after a backoff (1 s, 2 s, 4 s, … by
  default), up to ``tries`` attempts, then ``deferred``; ``RSET`` and carry on.
* The connection drops (no reply, a 421, a socket error or a timeout) before
  the whole message is with the server: the connection is opened again and
  the message tried again, counting as an attempt; ``deferred`` when the
  tries run out.
* No answer to the final "." within ``data_timeout`` (or the connection drops
  while waiting for it): ``unknown``, as the message may have arrived; not
  tried again, and the connection is closed.
* The server throttles (421, 432 or 451 with 4.3.2, 4.7.x or "busy" words, at
  any step or when connecting): the whole pool slows down (the shared rate
  is halved, then recovers message by message) and the message is tried
  again later without counting as an attempt; never ``failed``.

Every outcome carries the relay account that answered (``relay``), so the
ledger can count each account's messages against its daily quota.

``on_start`` is called just before ``MAIL FROM`` of each attempt and
``on_done`` once per message with its final outcome, from the worker threads.
When ``on_start`` answers False (someone else has claimed that person) the
message is dropped without ``on_done`` and the worker takes the next one. A
job read from the iterable but never started (because of a stop) gets
neither: it was never handed to the server.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ...config import SmtpConfig
from ..base import Job, Outcome, TransportError
from .explain import Failure, is_throttle
from .ratelimit import RateLimiter
from .session import Dropped, Session, deliver, quit_session, still_there

__all__ = ["Lost", "Pool"]

_MAX_BACKOFF = 60.0  # seconds: the longest wait before trying a message again
_STALE_AFTER = 10.0  # seconds idle before a reused connection is checked with NOOP
_THROTTLED_AT_MOST = 100  # throttling replies to one message (or connection) before it counts


class Lost(TransportError):
    """No connection to the server can be made any more. ``unfinished``: messages
    started and not finished, with their last outcome, when handed over."""

    def __init__(self, message: str, unfinished: list[tuple[Job, Outcome]]) -> None:
        super().__init__(message)
        self.unfinished = unfinished


@dataclass(eq=False)
class _Item:
    job: Job
    attempts: int = 0
    started: bool = False
    finished: bool = False
    last: Outcome | None = None
    throttled: int = 0


class _Work:
    """Fresh jobs (a bounded queue), jobs waiting to be tried again, and who is busy.

    Workers wait on ``has_work``; the reader of the caller's jobs (and
    ``wait_done``) on ``has_room``. Both share one lock, and each is woken only
    when there is something for it, so a message costs no needless thread switch.
    """

    def __init__(self, workers: int, room: int) -> None:
        lock = threading.Lock()
        self.has_work = threading.Condition(lock)
        self.has_room = threading.Condition(lock)
        self.halted = threading.Event()
        self.fresh: deque[_Item] = deque()
        self.room = room
        self.later: list[tuple[float, int, _Item]] = []
        self._seq = itertools.count()
        self.closed = False
        self.busy = 0
        self.live = workers
        self.error: BaseException | None = None
        self.lost: str | None = None  # why the last worker gave up connecting

    def _halt(self) -> None:
        self.halted.set()
        self.has_work.notify_all()
        self.has_room.notify_all()

    def halt(self, error: BaseException | None = None) -> None:
        with self.has_work:
            if error is not None and self.error is None:
                self.error = error
            self._halt()

    def put(self, item: _Item, stop: threading.Event) -> bool:
        """Queue a fresh job (waiting while the queue is full); False: halted."""
        with self.has_room:
            while True:
                if stop.is_set():
                    self._halt()
                if self.halted.is_set():
                    return False
                if len(self.fresh) < self.room:
                    self.fresh.append(item)
                    self.has_work.notify()
                    return True
                self.has_room.wait(0.1)  # wake up to look at `stop` now and then

    def close(self) -> None:
        with self.has_work:
            self.closed = True
            self.has_work.notify_all()

    def get(self) -> _Item | None:
        """The next job to work on, a due retry first; None: nothing left, or halted."""
        with self.has_work:
            while True:
                if self.halted.is_set():
                    return None
                now = time.monotonic()
                if self.later and self.later[0][0] <= now:
                    self.busy += 1
                    return heapq.heappop(self.later)[2]
                if self.fresh:
                    self.busy += 1
                    if len(self.fresh) <= self.room // 2:
                        self.has_room.notify()  # the reader refills half the queue at once
                    return self.fresh.popleft()
                if self.closed and not self.later and self.busy == 0:
                    return None
                self.has_work.wait(self.later[0][0] - now if self.later else None)

    def release(self, item: _Item, retry_in: float | None = None) -> None:
        """Done with ``item`` for now; ``retry_in`` seconds: try it again then."""
        with self.has_work:
            self.busy -= 1
            if retry_in is not None:
                heapq.heappush(self.later, (time.monotonic() + retry_in, next(self._seq), item))
                self.has_work.notify()  # a waiting worker may now have an earlier deadline
            elif self.busy == 0 and self.closed and not self.fresh and not self.later:
                self.has_work.notify_all()  # all done: let the others leave

    def retire(self, lost: str | None = None) -> None:
        """A worker leaves; when the last one leaves, the run is over (or halted)."""
        with self.has_work:
            self.live -= 1
            if lost is not None:
                self.lost = lost
            if self.live == 0:
                self._halt()
            self.has_room.notify_all()

    def wait_done(self, stop: threading.Event) -> None:
        with self.has_room:
            while self.live > 0:
                if stop.is_set() and not self.halted.is_set():
                    self._halt()
                self.has_room.wait(0.1)

    def leftovers(self) -> list[_Item]:
        with self.has_work:
            items = [entry[2] for entry in sorted(self.later, key=lambda e: e[:2])]
            items += self.fresh
            self.later.clear()
            self.fresh.clear()
            return items


class Pool:
    """``config.connections`` workers, each opening its sessions with ``connect``."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        connect: Callable[[int], Session],
        limiter: RateLimiter,
        backoff: float,
        relay: str = "",
    ) -> None:
        self.config = config
        self._connect = connect
        self.limiter = limiter
        self._backoff = backoff
        self.relay = relay

    def send_all(
        self,
        jobs: Iterable[Job],
        *,
        on_start: Callable[[Job], bool],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
        hand_over: bool = False,
    ) -> None:
        """``SmtpTransport.send_all``, once the transport is prepared. With
        ``hand_over``, messages started but not finished when the server is lost
        for good get no ``on_done``: they travel in the Lost error, for another
        relay to send."""
        if self.relay:
            given, relay = on_done, self.relay

            def on_done(job: Job, outcome: Outcome) -> None:
                given(job, replace(outcome, relay=relay))

        workers = max(1, self.config.connections)
        work = _Work(workers, room=4 * workers)
        threads = [
            threading.Thread(
                target=self._worker,
                args=(n, work, on_start, on_done, stop),
                name=f"smtp-{n}",
                daemon=True,
            )
            for n in range(1, workers + 1)
        ]
        for t in threads:
            t.start()
        error: BaseException | None = None
        ran_out = False
        try:
            for job in jobs:
                if not work.put(_Item(job), stop):
                    break
            else:
                ran_out = True
        except BaseException as exc:  # from the caller's generator, or Ctrl-C
            error = exc
            work.halt()
        work.close()
        try:
            work.wait_done(stop)
        except BaseException:  # a second Ctrl-C while messages finish: leave now
            work.halt()
            raise
        for t in threads:
            t.join()
        left = work.leftovers()
        lost = bool(work.lost) and not stop.is_set() and bool(left or not ran_out)
        unfinished: list[tuple[Job, Outcome]] = []
        for item in left:
            if item.started and not item.finished:
                # Waiting to be tried again when the run stopped: deferred, as it stands.
                item.finished = True
                last = item.last or Outcome("deferred", None, "stopped before the server answered")
                if lost and hand_over:
                    unfinished.append((item.job, last))  # for another relay to try
                    continue
                try:
                    on_done(item.job, last)
                except Exception as exc:
                    error = error or exc
        if error is not None:
            raise error
        if work.error is not None:
            raise work.error
        if lost:
            raise Lost(
                f"lost the mail server and could not connect again: {work.lost}. Run the "
                "same command again to carry on where it stopped",
                unfinished,
            )

    def _retry_in(self, attempt: int) -> float:
        return float(min(self._backoff * 2.0 ** max(attempt - 1, 0), _MAX_BACKOFF))

    def _throttled(self) -> float:
        """The server asked us to slow down: halve the pool's rate; seconds to wait."""
        self.limiter.slow_down()
        return max(self._backoff, self.limiter.interval)

    def _worker(
        self,
        number: int,
        work: _Work,
        on_start: Callable[[Job], bool],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        tries = max(1, self.config.tries)
        smtp: Session | None = None
        failures = 0  # connection attempts failed in a row
        throttled = 0  # connection attempts throttled in a row
        item: _Item | None = None
        lost: str | None = None
        try:
            while True:
                item = work.get()
                if item is None:
                    return
                wait = self.limiter.reserve()
                if wait > 0 and work.halted.wait(wait):
                    work.release(item, 0.0)
                    item = None
                    continue
                if smtp is not None and time.monotonic() - smtp.last_used > _STALE_AFTER:
                    smtp = still_there(smtp)
                if smtp is None:
                    try:
                        smtp = self._connect(number)
                        failures = throttled = 0
                    except Failure as exc:
                        work.release(item, 0.0)  # not started: anyone may take it
                        item = None
                        if exc.permanent:
                            work.halt(TransportError(exc.message))
                            return
                        if exc.throttled and throttled < _THROTTLED_AT_MOST:
                            throttled += 1
                            work.halted.wait(self._throttled())
                            continue
                        failures += 1
                        if failures >= max(tries, 2):
                            lost = exc.message
                            return
                        work.halted.wait(self._retry_in(failures))
                        continue
                if stop.is_set():
                    work.halt()
                if work.halted.is_set():
                    work.release(item, 0.0)
                    item = None
                    continue
                # Only False skips: a caller answering None still sends, as before.
                if on_start(item.job) is False:
                    item.finished = True  # someone else's now: no outcome from us
                    work.release(item)
                    item = None
                    continue
                item.attempts += 1
                item.started = True
                try:
                    outcome = deliver(smtp, item.job, data_timeout=self.config.data_timeout)
                    retry = outcome.state == "deferred"
                    slow = retry and is_throttle(outcome.code, outcome.text)
                    if smtp.sock is None:  # closed after a failed RSET
                        smtp = None
                except Dropped as drop:
                    smtp = None
                    retry = True
                    slow = is_throttle(drop.code, drop.reason)
                    outcome = Outcome(
                        "deferred",
                        drop.code,
                        f"the connection to the mail server dropped ({drop.reason})",
                    )
                if outcome.state == "sent":
                    self.limiter.recover()
                if slow and item.throttled < _THROTTLED_AT_MOST and not work.halted.is_set():
                    item.throttled += 1
                    item.attempts -= 1  # the server's load, not this message: no attempt
                    item.last = outcome
                    work.release(item, self._throttled())
                elif (
                    retry and item.attempts < tries and not (work.halted.is_set() or stop.is_set())
                ):
                    item.last = outcome
                    work.release(item, self._retry_in(item.attempts))
                else:
                    if retry:
                        outcome = Outcome(
                            "deferred",
                            outcome.code,
                            f"{outcome.text} (tried {item.attempts} "
                            f"time{'s' if item.attempts != 1 else ''})",
                        )
                    item.finished = True
                    on_done(item.job, outcome)
                    work.release(item)
                item = None
        except BaseException as exc:
            if item is not None:
                work.release(item, None if item.finished else 0.0)
            work.halt(exc)
        finally:
            if smtp is not None:
                quit_session(smtp)
            work.retire(lost)
