"""newsletter dns: the DNS records that let receivers trust the newsletter's mail."""

from __future__ import annotations

import click
from rich.markup import escape

from ..dkim import DkimError, dns_records, signer_for
from .common import InputError, console, open_workspace


@click.command("dns")
@click.pass_context
def command(ctx: click.Context) -> None:
    """Print the DNS records to publish for the From address's domain.

    With [dkim] set up: the DKIM public key (a TXT record at
    SELECTOR._domainkey.DOMAIN), made from the private key the sends sign
    with; always: a suggested SPF record for the relays in [smtp], and a
    DMARC record that only asks for reports (p=none). Give them to whoever
    looks after your domain's DNS. The private key is never printed.

    \b
    Examples:
      newsletter dns
      NEWSLETTER_DKIM_KEY="$(cat /etc/newsletter/dkim-private.pem)" newsletter dns
    """
    ws = open_workspace(ctx)
    try:
        signer = signer_for(ws.config)
    except DkimError as exc:
        raise InputError(str(exc).replace("; nothing was sent", "")) from None
    if signer is None:
        console.print(
            "[yellow]No DKIM signing:[/yellow] [dkim] domain is not set, so no DKIM record "
            "is printed (your mail provider may sign for you: Microsoft 365 and Google "
            "Workspace do, once the domain is set up there)."
        )
    for n, record in enumerate(dns_records(ws.config, signer), 1):
        console.print(f"\n[bold]{n}. {escape(record.what)}[/bold] (TXT)")
        console.print(f"   name:  {escape(record.name)}")
        console.print(f"   value: {escape(record.value)}", soft_wrap=True)
        if len(record.value) > 255:
            console.print(f"   as strings: {escape(record.quoted())}", soft_wrap=True)
        if record.note:
            console.print(f"   ({escape(record.note)})")
