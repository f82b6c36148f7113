"""How fast the message stage turns a variant and a recipient into bytes.

Against the naive path measured in the same run: an ``email.message.EmailMessage``
built per recipient (``set_content`` text, ``add_alternative`` HTML, every
header) and serialised with ``as_bytes(policy=SMTP)``, 12-15 ms a message when first
measured; the prepared bytes template must beat it by 50x or more
and reach 5,000 messages/s.

Recipients are made on the fly (a generator: the run never holds them all).
The variant is built here: ~50 KB of HTML shaped like MJML output (nested
tables, inline styles, so many '=' to quote) with placeholders in text, in
attributes and in links; or, with ``--issue``, rendered from a real issue.

Run by hand from the repository:

    .venv/bin/python benchmarks/bench_message.py [N] [--naive 2000] [--eml 10000]

Every result is a ``key=value`` line, so runs are easy to compare or grep.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender.config import Config  # noqa: E402
from sender.message import MessageTemplate, message_id  # noqa: E402
from sender.placeholders import fill, split  # noqa: E402
from sender.recipient import Recipient  # noqa: E402
from sender.variant import Variant  # noqa: E402

FIRST = ["Zoë", "Łukasz", "Amira", "Bob", "Siobhán", "Chen", "Oluwaseun", "Mary-Jane", "", "José"]
LAST = ["O'Connor", "Nowak", "Khan", "Smith", "Ní Bhriain", "陈", "Adeyemi", "d'Arcy", "Jones"]
SCHOOLS = ["Riverside Primary", "St Mary's C of E", "Hillside Academy", "Oak Lane Infants", ""]

PARAGRAPH = (
    "Over the past month I have been out and about visiting schools across the city, "
    "and I have been struck again by the care and ambition I see in every classroom. "
    "Thank you for the welcome — and for the honest conversations about attendance, "
    "inclusion and the pressures on budgets that so many of you are facing this term. "
)


def synthetic_variant(target_bytes: int = 50_000) -> Variant:
    """HTML like MJML's output, about ``target_bytes`` long, and its text part."""
    head = (
        '<!doctype html>\n<html lang="en-GB" xmlns="http://www.w3.org/1999/xhtml">'
        '<head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width, initial-scale=1"><title>Schools and Learning News'
        "</title><style>@media only screen and (max-width:480px){.col{width:100%!important}}"
        '</style></head>\n<body style="margin:0;padding:0;background-color:#f4f4f4;">'
        '<div style="display:none;max-height:0;overflow:hidden;">Out and about, careers '
        "fair, attendance</div>\n"
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background:#ffffff;"><tr><td style="padding:24px 32px;font-family:Arial,'
        'Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1a1a1a;">\n'
        '<p style="margin:0 0 16px 0;">Dear {{ first_name | default("colleagues") }},</p>\n'
    )
    section = (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
        '<tr><td class="col" style="padding:16px 0;border-top:1px solid #dddddd;">\n'
        '<h2 style="margin:0 0 8px 0;font-size:20px;color:#00558c;">{n}. Out and About</h2>\n'
        '<p style="margin:0 0 16px 0;">{para}</p>\n'
        '<p style="margin:0 0 16px 0;">{para}</p>\n'
        '<a href="https://news.riverside.example.org/go?s={n}&amp;e={{{{ email }}}}" '
        'style="display:inline-block;padding:10px 18px;background:#00558c;color:#ffffff;'
        'text-decoration:none;border-radius:4px;">Book a place</a>\n'
        "</td></tr></table>\n"
    )
    foot = (
        '<p style="margin:16px 0 0 0;">Hope to see you at {{ school | default("your school") }}'
        " soon!<br>Steve</p>\n</td></tr></table>\n"
        '<p style="font-size:12px;color:#666666;">Sent to {{ email }}. '
        '<a href="https://news.riverside.example.org/unsubscribe?e={{ email }}" '
        'style="color:#666666;">Unsubscribe</a></p>\n</body></html>\n'
    )
    sections = []
    n = 1
    while len(head) + len(foot) + sum(len(s) for s in sections) < target_bytes:
        sections.append(section.format(n=n, para=PARAGRAPH * 2))
        n += 1
    html = head + "".join(sections) + foot
    text = (
        'Dear {{ first_name | default("colleagues") }},\n\n'
        + "".join(f"{i}. Out and About\n\n{PARAGRAPH}\n\n{PARAGRAPH}\n\n" for i in range(1, n))
        + 'Hope to see you at {{ school | default("your school") }} soon!\nSteve\n\n'
        "Unsubscribe: https://news.riverside.example.org/unsubscribe?e={{ email }}\n"
    )
    return Variant(
        slug="2025-02-13-steve-kay-blog",
        audiences=frozenset({"headteachers"}),
        subject="Steve Kay’s blog — 13 February",
        preheader="Out and about, careers fair, attendance",
        html=html,
        text=text,
        fields=frozenset({"first_name", "school", "email"}),
        required=frozenset({"email"}),
    )


def issue_variant(path: Path) -> tuple[Variant, Config]:
    """The headteachers variant of a real issue, rendered by the library."""
    from sender.workspace import Workspace

    ws = Workspace.open(REPO)
    issue = ws.load_issue(path)
    (variant,) = ws.renderer.variants(issue, [frozenset({"headteachers"})])
    return variant, ws.config


def recipients(n: int) -> Iterator[Recipient]:
    """``n`` fictional people, made one at a time."""
    for i in range(n):
        first = FIRST[i % len(FIRST)]
        last = LAST[(i // len(FIRST)) % len(LAST)]
        address = f"person{i}@school{i % 97}.example.org"
        fields = {"email": address, "first_name": first, "school": SCHOOLS[i % len(SCHOOLS)]}
        yield Recipient(
            email=address,
            name=f"{first} {last}".strip(),
            fields=fields,
            lists=("headteachers",),
            rows=(("recipients/headteachers.csv", i + 2),),
        )


def naive(variant: Variant, config: Config, date: datetime, r: Recipient) -> bytes:
    """One EmailMessage per recipient, the way the stdlib documentation builds one."""
    msg = EmailMessage()
    msg["Date"] = format_datetime(date)
    msg["From"] = config.sender
    if config.reply_to:
        msg["Reply-To"] = config.reply_to
    msg["To"] = formataddr((r.name, r.email))
    msg["Subject"] = fill(split(variant.subject, "text"), r.fields)
    msg["Message-ID"] = message_id(variant.slug, r.email, config.domain)
    msg["List-Id"] = f"{config.name} <{variant.key.replace('+', '.')}.{config.domain}>"
    if config.unsubscribe:
        msg["List-Unsubscribe"] = f"<{config.unsubscribe}>"
        if config.unsubscribe.startswith("https://"):
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(fill(split(variant.text, "text"), r.fields))
    msg.add_alternative(fill(split(variant.html, "html"), r.fields), subtype="html")
    return msg.as_bytes(policy=email.policy.SMTP)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="messages to render")
    parser.add_argument("--naive", type=int, default=2_000, help="messages on the naive path")
    parser.add_argument("--eml", type=int, default=10_000, help=".eml files to write")
    parser.add_argument("--issue", type=Path, help="render this issue instead (headteachers)")
    args = parser.parse_args()

    date = datetime(2025, 2, 13, 9, 0, tzinfo=UTC)
    if args.issue:
        variant, config = issue_variant(args.issue)
    else:
        variant = synthetic_variant()
        config = Config(
            root=REPO,
            name="Schools and Learning News",
            sender="Riverside Schools and Learning <news@riverside.example.org>",
            reply_to="Communications Team <comms@riverside.example.org>",
            domain="news.riverside.example.org",
            unsubscribe="https://news.riverside.example.org/unsubscribe",
        )
    print(f"python={sys.version.split()[0]}")
    print(f"variant_html_bytes={len(variant.html.encode())}")
    print(f"variant_text_bytes={len(variant.text.encode())}")

    started = time.perf_counter()
    template = MessageTemplate(variant, config, date=date)
    print(f"prepare_ms={(time.perf_counter() - started) * 1000:.1f}")

    sample = template.render(next(recipients(1)))
    msg = email.message_from_bytes(sample, policy=email.policy.default)
    defects = len(msg.defects) + sum(len(p.defects) for p in msg.walk())
    print(f"message_bytes={len(sample)}")
    print(f"sample_defects={defects}")

    for r in recipients(1_000):  # warm-up
        template.render(r)
    started = time.perf_counter()
    for _ in recipients(args.n):
        pass
    making = time.perf_counter() - started
    total = 0
    started = time.perf_counter()
    for r in recipients(args.n):
        total += len(template.render(r))
    elapsed = time.perf_counter() - started
    fast = rate(args.n, elapsed)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"messages={args.n}")
    print(f"message_stage_seconds={elapsed:.2f}")
    print(f"message_stage_msgs_per_s={fast:.0f}")
    print(f"message_stage_us_per_msg={elapsed / args.n * 1e6:.1f}")
    print(f"message_stage_mb_per_s={total / elapsed / 1e6:.0f}")
    # Included above: making the fictional recipients themselves.
    print(f"recipient_generation_us_per_msg={making / args.n * 1e6:.1f}")
    print(f"peak_rss_mb={peak_rss_mb:.0f}")

    started = time.perf_counter()
    for r in recipients(args.naive):
        naive(variant, config, date, r)
    elapsed = time.perf_counter() - started
    slow = rate(args.naive, elapsed)
    print(f"naive_messages={args.naive}")
    print(f"naive_msgs_per_s={slow:.0f}")
    print(f"naive_ms_per_msg={elapsed / args.naive * 1000:.2f}")
    print(f"ratio={fast / slow:.0f}x")

    outbox = Path(tempfile.mkdtemp(prefix="bench-eml-"))
    try:
        started = time.perf_counter()
        for n, r in enumerate(recipients(args.eml)):
            (outbox / f"{n}.eml").write_bytes(template.render(r))
        elapsed = time.perf_counter() - started
        written = sum(1 for _ in os.scandir(outbox))
        print(f"eml_files={written}")
        print(f"eml_files_per_s={rate(written, elapsed):.0f}")
    finally:
        shutil.rmtree(outbox)


if __name__ == "__main__":
    main()
