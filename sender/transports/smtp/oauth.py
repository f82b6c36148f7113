"""Signing in to Microsoft 365 or Google Workspace with OAuth2 (SMTP AUTH XOAUTH2).

``[smtp] auth = "microsoft"``: the client-credentials grant for an app
registered in Entra ID with the ``SMTP.SendAsApp`` permission, through MSAL;
``auth = "google"``: a service account with domain-wide delegation, acting as
the mailbox in ``[smtp] username``, through google-auth. Either gives an
access token, kept in memory and fetched again shortly before it expires (or
when the server refuses it); never printed, logged or written anywhere.

What goes wrong is said in the comms officer's words, with the step for
whoever administers the tenant. Both libraries are optional
(``pip install 'newsletter-sender[microsoft]'`` or ``[google]``).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import os
import re
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ...config import SmtpConfig
from ..base import TransportError
from .explain import Failure

__all__ = [
    "GOOGLE_SCOPE",
    "MICROSOFT_LOGIN",
    "MICROSOFT_SCOPE",
    "GoogleTokens",
    "MicrosoftTokens",
    "Tokens",
    "tokens_from_config",
    "xoauth2",
]

MICROSOFT_LOGIN = "https://login.microsoftonline.com"
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
SEND_AS_APP = "SMTP.SendAsApp"

# Where a path, a key or a secret may be checked: requests' ``verify``.
Verify = bool | str


class Tokens(Protocol):
    """Access tokens for one mailbox, cached; ``forget`` after the server refused one."""

    provider: str  # "Microsoft 365", "Google Workspace": for messages

    def token(self) -> str:
        """A token valid for a while yet; raises Failure (in words) when none can be had."""
        ...

    def forget(self) -> None:
        """The server refused the last token: the next ``token()`` fetches a new one."""
        ...

    def refused(self, code: int, reply: str) -> str:
        """What the mail server refusing the token means, and the admin step to fix it."""
        ...


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (base64) for ``user`` with ``token``."""
    raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def _library(module: str, extra: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TransportError(
            f'[smtp] auth = "{extra}" signs in with {what}, which is not installed. Install '
            f"it with: pip install 'newsletter-sender[{extra}]' (in a copy of this project: "
            f".venv/bin/pip install -e '.[{extra}]'); nothing was sent"
        ) from None


def _claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT access token, read without checking its signature
    (only to say what is missing from it); None when it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


# -- Microsoft 365 ------------------------------------------------------------

# AADSTS codes: what each means, and the step to fix it.
_ENTRA: dict[int, str] = {
    90002: "Microsoft does not know the tenant '{tenant}'. Set [smtp] tenant to your "
    "organisation's Directory (tenant) ID (Entra admin centre → Overview) or its domain",
    90023: "Microsoft does not know the tenant '{tenant}'. Set [smtp] tenant to your "
    "organisation's Directory (tenant) ID (Entra admin centre → Overview)",
    700016: "there is no app with the client ID '{client_id}' in the tenant '{tenant}'. Check "
    "[smtp] client_id is the Application (client) ID shown in Entra admin centre → App "
    "registrations, and [smtp] tenant is the tenant it was registered in",
    7000215: "Microsoft did not accept the client secret in {secret_env}: it is not one of the "
    "app's secrets (or it was deleted). In Entra admin centre → App registrations → the app → "
    "Certificates & secrets, make a new client secret and put its Value (not its Secret ID) "
    "in {secret_env}",
    7000222: "the app's client secret in {secret_env} has expired. In Entra admin centre → App "
    "registrations → the app → Certificates & secrets, make a new client secret and put its "
    "Value in {secret_env}",
    700027: "Microsoft did not accept the certificate named by {certificate_env}: upload its "
    "public part to Entra admin centre → App registrations → the app → Certificates & secrets "
    "→ Certificates, or check the file is the one uploaded there",
    7000112: "the app '{client_id}' is disabled in the tenant. Ask your Entra administrator to "
    "enable it (Enterprise applications → the app → Properties → Enabled for users to sign in)",
    65001: "an administrator has not consented to the app's permissions. In Entra admin "
    "centre → App registrations → the app → API permissions, choose 'Grant admin consent'",
}


class MicrosoftTokens:
    """Client-credentials tokens for Exchange Online, through MSAL (it caches them and
    fetches a new one five minutes before one expires)."""

    provider = "Microsoft 365"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        credential: str | dict[str, str],
        authority_host: str = MICROSOFT_LOGIN,
        verify: Verify = True,
    ) -> None:
        self.config = config
        self._credential = credential
        self._authority = f"{authority_host.rstrip('/')}/{config.tenant}"
        self._verify = verify
        self._app: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the secret
        c = self.config
        return f"MicrosoftTokens(tenant={c.tenant!r}, client_id={c.client_id!r})"

    def _words(self, template: str) -> str:
        c = self.config
        return template.format(
            tenant=c.tenant,
            client_id=c.client_id,
            secret_env=c.client_secret_env,
            certificate_env=c.certificate_env,
        )

    def _application(self) -> Any:
        if self._app is not None:
            return self._app
        msal = _library("msal", "microsoft", "MSAL")
        requests = importlib.import_module("requests")
        try:
            self._app = msal.ConfidentialClientApplication(
                self.config.client_id,
                authority=self._authority,
                client_credential=self._credential,
                validate_authority=False,
                instance_discovery=False,
                verify=self._verify,
                token_cache=msal.TokenCache(),
            )
        except ValueError as exc:
            # MSAL reads the tenant's OpenID configuration first: a 400 is an unknown tenant.
            if "authority" in str(exc).lower():
                raise Failure(self._words(_ENTRA[90002]), permanent=True) from None
            raise Failure(
                f"the app's certificate or key named by {self.config.certificate_env} cannot "
                f"be used ({exc}): it must be a PEM file holding the private key and the "
                "certificate",
                permanent=True,
            ) from None
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None
        return self._app

    def _unreachable(self, exc: BaseException) -> Failure:
        return Failure(
            f"cannot reach Microsoft's sign-in service ({self._authority.rsplit('/', 1)[0]}) to "
            f"sign in: {type(exc).__name__}. Check this computer is online and that the "
            "network lets it reach login.microsoftonline.com"
        )

    def token(self) -> str:
        requests = importlib.import_module("requests")
        with self._lock:
            try:
                result = self._application().acquire_token_for_client(scopes=[MICROSOFT_SCOPE])
            except requests.RequestException as exc:
                raise self._unreachable(exc) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            raise Failure(self._error(result or {}), permanent=True)
        claims = _claims(token)
        if claims is not None and SEND_AS_APP not in (claims.get("roles") or []):
            raise Failure(
                f"the app '{self.config.client_id}' signed in, but it may not send mail: it has "
                f"not been granted the {SEND_AS_APP} permission. In Entra admin centre → App "
                "registrations → the app → API permissions → Add a permission → APIs my "
                "organization uses → Office 365 Exchange Online → Application permissions, "
                f"tick {SEND_AS_APP}, then choose 'Grant admin consent'",
                permanent=True,
            )
        return str(token)

    def _error(self, result: dict[str, Any]) -> str:
        codes = list(result.get("error_codes") or [])
        description = str(result.get("error_description") or result.get("error") or "")
        codes += [int(n) for n in re.findall(r"AADSTS(\d+)", description)]
        for code in codes:
            if code in _ENTRA:
                return self._words(_ENTRA[code])
        first = description.splitlines()[0] if description else "no reason given"
        return f"Microsoft refused to sign the app in: {first}"

    def forget(self) -> None:
        with self._lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(entry)

    def refused(self, code: int, reply: str) -> str:
        c = self.config
        mailbox = c.username
        if "5.7.139" in reply or "SmtpClientAuthentication" in reply:
            return (
                f"Exchange Online has SMTP AUTH turned off for the mailbox {mailbox} ({code} "
                f"{reply}). In the Exchange admin centre → Recipients → Mailboxes → {mailbox} → "
                "Manage email apps settings, tick Authenticated SMTP (PowerShell: Set-CASMailbox "
                f"-Identity {mailbox} -SmtpClientAuthenticationDisabled $false); if it is off "
                "for the whole organisation, Set-TransportConfig "
                "-SmtpClientAuthenticationDisabled $false"
            )
        return (
            f"Exchange Online did not accept the app's sign-in for {mailbox} ({code} {reply}). "
            "Register the app's service principal in Exchange Online and let it use the "
            f"mailbox: New-ServicePrincipal -AppId {c.client_id} -ObjectId <the Object ID "
            "under Entra admin centre → Enterprise applications → the app>, then "
            f"Add-MailboxPermission -Identity {mailbox} -User <that Object ID> -AccessRights "
            "FullAccess. Changes can take 30 minutes to apply. Also check [smtp] username is "
            "that mailbox"
        )


# -- Google Workspace ---------------------------------------------------------


class GoogleTokens:
    """A service account acting as the mailbox (domain-wide delegation), through
    google-auth; the token endpoint is the key file's ``token_uri``."""

    provider = "Google Workspace"

    def __init__(self, config: SmtpConfig, *, key: dict[str, Any], verify: Verify = True) -> None:
        self.config = config
        self._key = key
        self._verify = verify
        self._credentials: Any = None
        self._session: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"GoogleTokens(client_id={self._key.get('client_id')!r})"

    def _creds(self) -> Any:
        if self._credentials is not None:
            return self._credentials
        _library("google.auth", "google", "google-auth")
        service_account = importlib.import_module("google.oauth2.service_account")
        try:
            self._credentials = service_account.Credentials.from_service_account_info(
                self._key, scopes=[GOOGLE_SCOPE], subject=self.config.username
            )
        except (ValueError, KeyError) as exc:
            raise Failure(
                f"the file named by {self.config.key_file_env} is not a service account key "
                f"({exc}). In the Google Cloud console → IAM & Admin → Service accounts → the "
                "account → Keys → Add key → JSON, save the file outside this folder and put its "
                f"path in {self.config.key_file_env}",
                permanent=True,
            ) from None
        requests = _library("requests", "google", "requests")
        self._session = requests.Session()
        self._session.verify = self._verify
        return self._credentials

    def token(self) -> str:
        _library("google.auth", "google", "google-auth")
        exceptions = importlib.import_module("google.auth.exceptions")
        transport = importlib.import_module("google.auth.transport.requests")
        with self._lock:
            creds = self._creds()
            if not creds.valid:  # google-auth counts one as expired minutes early
                try:
                    creds.refresh(transport.Request(self._session))
                except exceptions.RefreshError as exc:
                    raise Failure(self._error(exc), permanent=True) from None
                except exceptions.TransportError as exc:
                    raise Failure(
                        "cannot reach Google's sign-in service "
                        f"({self._key.get('token_uri')}): {type(exc).__name__}. Check this "
                        "computer is online and that the network lets it reach "
                        "oauth2.googleapis.com"
                    ) from None
            return str(creds.token)

    def _error(self, exc: BaseException) -> str:
        said = str(exc.args[0]) if exc.args else str(exc)
        c = self.config
        client = self._key.get("client_id", "?")
        if "unauthorized_client" in said:
            return (
                f"the service account (client ID {client}) may not act as {c.username}: "
                "domain-wide delegation is not set up for it. In the Google Admin console → "
                "Security → Access and data control → API controls → Manage Domain Wide "
                f"Delegation → Add new, enter the client ID {client} and the scope "
                f"{GOOGLE_SCOPE} (changes can take a few minutes, occasionally up to 24 hours)"
            )
        if "Invalid email or User ID" in said or "invalid_grant: Invalid user" in said:
            return (
                f"Google Workspace has no user {c.username}: set [smtp] username to the "
                "mailbox the newsletter is sent from (a real user in your Workspace, not an "
                "alias or a group)"
            )
        if "Invalid JWT Signature" in said or "account not found" in said.lower():
            return (
                f"Google did not accept the key in the file named by {c.key_file_env}: the "
                "key was deleted or the service account disabled. In the Google Cloud "
                "console → IAM & Admin → Service accounts → the account → Keys, make a new "
                f"JSON key and put the new file's path in {c.key_file_env}"
            )
        first = said.splitlines()[0] if said else "no reason given"
        return f"Google refused to sign the service account in: {first}"

    def forget(self) -> None:
        with self._lock:
            if self._credentials is not None:
                self._credentials.token = None

    def refused(self, code: int, reply: str) -> str:
        c = self.config
        return (
            f"Google did not accept the sign-in for {c.username} ({code} {reply}). Check "
            "[smtp] username is the mailbox the service account acts as, and that its "
            f"domain-wide delegation (Google Admin console → Security → API controls) lists "
            f"the scope {GOOGLE_SCOPE}"
        )


# -- from the settings --------------------------------------------------------


def tokens_from_config(config: SmtpConfig, *, verify: Verify = True) -> Tokens | None:
    """The token source ``[smtp] auth`` names (None for a password), its secret read
    from the environment. Raises TransportError, before connecting, when a setting or
    a secret is missing."""
    c = config
    if c.auth == "password":
        return None
    if not c.username:
        mailbox = "news@your-organisation.example" if c.auth == "microsoft" else "the mailbox"
        raise TransportError(
            f'[smtp] auth = "{c.auth}" needs [smtp] username: the mailbox the newsletter is '
            f'sent from (such as "{mailbox}"); nothing was sent'
        )
    if c.auth == "microsoft":
        _library("msal", "microsoft", "MSAL")
        missing = [k for k in ("tenant", "client_id") if not getattr(c, k)]
        if missing:
            raise TransportError(
                f'[smtp] auth = "microsoft" needs [smtp] {" and ".join(missing)}: the '
                "Directory (tenant) ID and the Application (client) ID of the app registered "
                "in Entra ID (Entra admin centre → App registrations → the app → Overview); "
                "nothing was sent"
            )
        return MicrosoftTokens(c, credential=_microsoft_credential(c), verify=verify)
    _library("google.auth", "google", "google-auth")
    return GoogleTokens(c, key=_google_key(c), verify=verify)


def _microsoft_credential(c: SmtpConfig) -> str | dict[str, str]:
    certificate = os.environ.get(c.certificate_env)
    if certificate:
        path = Path(certificate)
        try:
            pem = path.read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise TransportError(
                f"cannot read the certificate file named in {c.certificate_env} ({path}): "
                f"{getattr(exc, 'strerror', None) or exc}; nothing was sent"
            ) from None
        if "PRIVATE KEY-----" not in pem or "BEGIN CERTIFICATE-----" not in pem:
            raise TransportError(
                f"the file named in {c.certificate_env} ({path}) must hold both the app's "
                "private key and its certificate, in PEM form (cat key.pem cert.pem > "
                "app.pem); nothing was sent"
            )
        return {"private_key": pem, "public_certificate": pem}
    secret = os.environ.get(c.client_secret_env)
    if not secret:
        raise TransportError(
            f'[smtp] auth = "microsoft" needs the app\'s client secret in the environment '
            f"variable {c.client_secret_env} (or the path of its certificate file in "
            f"{c.certificate_env}). Set it in your shell (export {c.client_secret_env}=…) "
            "and run the command again; nothing was sent"
        )
    return secret


def _google_key(c: SmtpConfig) -> dict[str, Any]:
    named = os.environ.get(c.key_file_env)
    if not named:
        raise TransportError(
            f'[smtp] auth = "google" needs the path of the service account\'s JSON key file '
            f"in the environment variable {c.key_file_env} (export {c.key_file_env}=/path/"
            "to/key.json; keep the file outside this folder); nothing was sent"
        )
    try:
        key = json.loads(Path(named).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TransportError(
            f"cannot read the key file named in {c.key_file_env} ({named}): "
            f"{exc.strerror or exc}; nothing was sent"
        ) from None
    except ValueError:
        key = None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise TransportError(
            f"the file named in {c.key_file_env} ({named}) is not a service account's JSON "
            "key. In the Google Cloud console → IAM & Admin → Service accounts → the account "
            "→ Keys → Add key → JSON, and name the downloaded file; nothing was sent"
        )
    return key
