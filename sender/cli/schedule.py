"""newsletter send --at: the time to send at, the countdown, and a timer for a server."""

from __future__ import annotations

import re
import shlex
import threading
from datetime import datetime, timedelta

import click
from rich.markup import escape

from ..clock import Clock, when_words
from .common import console

__all__ = ["countdown", "parse_at", "schedule_text"]

_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_at(text: str, now: datetime) -> datetime:
    """``YYYY-MM-DD HH:MM`` in this computer's time zone, as an aware time in the future."""
    for form in _FORMATS:
        try:
            when = datetime.strptime(text.strip(), form).astimezone()
            break
        except ValueError:
            continue
    else:
        raise click.BadParameter(
            f"'{text}' is not a time we can read: write it as \"2026-03-05 08:00\" (year-month-"
            "day hours:minutes, this computer's time zone)",
            param_hint="--at",
        )
    if when <= now:
        raise click.BadParameter(
            f"{when:%Y-%m-%d %H:%M} has already passed (it is {now.astimezone():%Y-%m-%d %H:%M} "
            "now): give a time to come, or leave out --at to send now",
            param_hint="--at",
        )
    return when


def countdown(when: datetime, clock: Clock, stop: threading.Event) -> bool:
    """Wait until ``when``, a line counting down; False when Ctrl-C (``stop``) cancelled."""
    words = when_words(when, clock.now())
    console.print(f"Sending at {words}. Leave this window open; Ctrl-C cancels.")
    with console.status(f"Sending at {words}") as status:

        def tick(left: timedelta) -> None:
            status.update(f"Sending at {words}: {_left(left)} to go (Ctrl-C cancels)")

        return clock.sleep_until(when, stop, tick)


def _left(left: timedelta) -> str:
    seconds = int(left.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{days} day{'s' if days != 1 else ''} {clock}" if days else clock


def schedule_text(when: datetime, command: list[str], folder: str, name: str) -> str:
    """A systemd timer and service, and a cron line, that run ``command`` at ``when``."""
    unit = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"newsletter-{name}").strip("-")
    line = shlex.join(command)
    local = when.astimezone()
    return f"""\
# systemd (a user timer): save the two parts below as
#   ~/.config/systemd/user/{unit}.service and ~/.config/systemd/user/{unit}.timer
# put the secrets ([smtp] password_env, client_secret_env, …) in a file only you can
# read, named by EnvironmentFile=, then run:
#   systemctl --user daemon-reload && systemctl --user enable --now {unit}.timer
#   loginctl enable-linger "$USER"   # so it runs when you are not logged in

# --- {unit}.service ---
[Unit]
Description=Send the newsletter {name}

[Service]
Type=oneshot
WorkingDirectory={folder}
EnvironmentFile=%h/.config/newsletter/secrets.env
ExecStart={line}

# --- {unit}.timer ---
[Unit]
Description=Send the newsletter {name} at {local:%Y-%m-%d %H:%M}

[Timer]
OnCalendar={local:%Y-%m-%d %H:%M:%S}
Persistent=true

[Install]
WantedBy=timers.target

# cron instead (crontab -e); cron has no year, so remove the line once it has run:
{local.minute} {local.hour} {local.day} {local.month} * cd {shlex.quote(folder)} && {line}
"""


def show_schedule(when: datetime, command: list[str], folder: str, name: str) -> None:
    """Print the timer as it is, without Rich reading [brackets] as markup."""
    console.print(escape(schedule_text(when, command, folder, name)), end="", highlight=False)
