"""A throwaway PostgreSQL server for the tests: one cluster per test session, in a temp
folder, on a free port of 127.0.0.1 and a Unix socket of its own, stopped by its own
process handle at the end; a fresh database for each test that asks for one.

Debian's ``postgresql`` (installed by scripts/setup-tests.sh) brings the server
programs to /usr/lib/postgresql/VERSION/bin. The server refuses to run as root,
so as root it runs as the ``postgres`` user, in a folder that user owns.

Roles: ``newsletter`` (the superuser, trusted from 127.0.0.1, as the tests'
ledgers connect) and ``teller``, whose password is asked for (scram-sha-256), to
test that the password comes from the environment and is never shown.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPERUSER = "newsletter"
TELLER, TELLER_PASSWORD = "teller", "a-password-of-the-tests-only-7f3c"
INSTALL = "sudo apt-get install postgresql (or: bash scripts/setup-tests.sh)"


class Missing(Exception):
    """PostgreSQL's server programs are not installed."""


def server_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps them off PATH)."""

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise Missing(f"PostgreSQL is not installed; run: {INSTALL}")


@dataclass
class Cluster:
    folder: Path
    port: int
    socket_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser through psql on the socket; its output."""
        done = subprocess.run(
            [
                str(server_bin() / "psql"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout

    def new_database(self) -> str:
        """A fresh, empty database; its name."""
        name = f"ledger_{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _server_user() -> tuple[int, int] | None:
    """The ``postgres`` user's (uid, gid), to run the server as when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise Missing(f"there is no 'postgres' user to run the server as; run: {INSTALL}") from None
    return user.pw_uid, user.pw_gid


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster() -> Iterator[Cluster]:
    """initdb in a temp folder, the server started in the foreground (its handle kept), and
    on exit a fast shutdown by that handle and the folder removed."""
    bin_dir = server_bin()
    ids = _server_user()
    uid, gid = ids if ids is not None else (None, None)
    top = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
    data, sockets, log = top / "data", top / "sockets", top / "server.log"
    sockets.mkdir()
    if uid is not None and gid is not None:
        for path in (top, sockets):
            os.chown(path, uid, gid)
    groups: list[int] | None = [] if uid is not None else None
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {TELLER} 127.0.0.1/32 scram-sha-256\n"
            f"host all {SUPERUSER} 127.0.0.1/32 trust\n",
            encoding="utf-8",
        )
        port = _free_port()
        out = open(log, "wb")  # noqa: SIM115 (the server writes to it until stopped)
        try:
            process = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "fsync=on",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        finally:
            out.close()
        running = Cluster(data, port, sockets, process, log)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text(errors='replace')}")
            try:
                running.psql("SELECT 1")
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        running.psql(f"CREATE ROLE {TELLER} LOGIN SUPERUSER PASSWORD '{TELLER_PASSWORD}'")
        yield running
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown: sessions ended, data kept
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
        shutil.rmtree(top, ignore_errors=True)


class Store:
    """Where a test's ledger lives, either kind, and how to look inside it from outside
    the program: ``rows(sql)`` on a connection of its own (SQL written with ``?``)."""

    def __init__(self, kind: str, path: Path, url: str | None = None) -> None:
        self.kind, self.path, self.url = kind, path, url

    @classmethod
    def of(cls, workspace: Path) -> Store:
        """The ledger a workspace's newsletter.toml names."""
        from sender.config import load_config

        config = load_config(workspace)
        if isinstance(config.ledger, str):
            return cls("postgresql", workspace / "ledger.sqlite", config.ledger)
        return cls("sqlite", config.resolve(config.ledger))

    @property
    def setting(self) -> str:
        """``[send] ledger`` in newsletter.toml."""
        return self.url if self.url is not None else self.path.name

    def open(self, **kwargs: Any) -> Any:
        """A new connection to the ledger, as the program opens it."""
        from sender.ledger import SqliteLedger
        from sender.ledger.postgres import PostgresLedger

        if self.url is not None:
            return PostgresLedger(self.url, **kwargs)
        return SqliteLedger(self.path, **kwargs)

    def rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        if self.url is None:
            lite = sqlite3.connect(self.path)
            try:
                with lite:
                    return lite.execute(sql, args).fetchall()
            finally:
                lite.close()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            cur = db.execute(sql.replace("?", "%s").replace("ORDER BY rowid", "ORDER BY seq"), args)
            return cur.fetchall() if cur.description else []

    def exists(self) -> bool:
        """Whether anything made the ledger yet (a file, or the tables in the database)."""
        if self.url is None:
            return self.path.exists()
        return bool(self.rows("SELECT to_regclass('ledger_schema') IS NOT NULL")[0][0])
