"""newsletter.toml: found like git finds .git, every mistake named, no traceback."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import Cli

from sender.config import (
    CONFIG_NAME,
    Config,
    WorkspaceNotFound,
    find_workspace,
    load_config,
    options,
)
from sender.message import MessageTemplate
from sender.problems import Problem, ProblemsError
from sender.variant import Variant

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"


def flat(text: str) -> str:
    """Output with runs of whitespace as one space: rich wraps long lines at 80 columns."""
    return " ".join(text.split())


def shown(result: Result, expected: str) -> bool:
    """Whether the output holds ``expected``, whitespace aside: rich folds a long
    absolute path in the middle when it wraps lines at 80 columns."""
    return "".join(expected.split()) in "".join(result.output.split())


def assert_clean_exit(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


def edit_config(workspace: Path, old: str, new: str) -> Path:
    path = workspace / CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in the shipped {CONFIG_NAME}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def config_problems(root: Path) -> list[Problem]:
    with pytest.raises(ProblemsError) as caught:
        load_config(root)
    return caught.value.problems


# --------------------------------------------------------------------------- finding it


def test_found_in_the_current_folder_or_a_parent(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = workspace / "newsletters" / "drafts" / "2025"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_workspace() == workspace.resolve()
    monkeypatch.chdir(workspace)
    assert find_workspace() == workspace.resolve()
    assert find_workspace(workspace / "templates") == workspace.resolve()


def test_nearest_config_wins(workspace: Path) -> None:
    inner = workspace / "other-newsletter"
    inner.mkdir()
    (inner / CONFIG_NAME).write_text('[newsletter]\nname = "Inner"\n', encoding="utf-8")
    (inner / "sub").mkdir()
    assert find_workspace(inner / "sub") == inner.resolve()
    assert load_config(find_workspace(inner / "sub")).name == "Inner"


def test_not_found_anywhere(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely" / "sub"
    lonely.mkdir(parents=True)
    with pytest.raises(WorkspaceNotFound) as caught:
        find_workspace(lonely)
    assert str(lonely.resolve()) in str(caught.value)
    assert "--workspace" in str(caught.value)


def test_check_from_a_subfolder_finds_the_workspace(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace / "newsletters")
    result = cli.at(None)("check", "2025-02-13-steve-kay-blog.yaml")
    assert_clean_exit(result, 0)
    assert f"{BLOG}: ok" in result.output


def test_workspace_option(
    cli: Cli, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for option in ("--workspace", "-w"):
        result = cli.at(None)(option, workspace, "check", workspace / BLOG)
        assert_clean_exit(result, 0)
        assert f"{BLOG}: ok" in result.output


def test_no_config_here_or_above_is_a_usage_error(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.at(None)("check", "issue.yaml")
    assert_clean_exit(result, 2)
    assert "Usage:" in result.output
    assert shown(result, f"Error: No newsletter.toml found in {tmp_path.resolve()} ")
    assert "pass --workspace DIR" in flat(result.output)


def test_workspace_option_without_config_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-newsletter"
    empty.mkdir()
    result = cli.at(empty)("check", empty / "issue.yaml")
    assert_clean_exit(result, 2)
    assert "Usage:" in result.output
    assert shown(result, f"Error: No newsletter.toml in {empty}: it is not a newsletter folder.")
    assert "Pass --workspace the folder that holds newsletter.toml." in flat(result.output)
    with pytest.raises(WorkspaceNotFound):
        load_config(empty)


def test_workspace_option_that_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    result = cli.at(tmp_path / "nowhere")("check", "issue.yaml")
    assert_clean_exit(result, 2)
    assert "does not exist" in flat(result.output)


# --------------------------------------------------------------------------- loading it


def test_shipped_config_loads(workspace: Path) -> None:
    config = load_config(workspace)
    assert isinstance(config, Config)
    assert config.root == workspace
    assert config.sender == "Riverside Schools and Learning <news@riverside.example.org>"
    assert config.reply_to == "Communications Team <comms@riverside.example.org>"
    assert config.domain == "news.riverside.example.org"
    assert config.web_url == "https://news.riverside.example.org/"
    assert config.inliner == "css-inline"
    assert config.transport == "eml"
    assert config.outbox == Path("outbox")
    assert config.smtp.port == 587
    assert config.smtp.rate == 10.0 and isinstance(config.smtp.rate, float)
    assert config.smtp.password_env == "NEWSLETTER_SMTP_PASSWORD"


def test_a_minimal_config_gets_defaults(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text("", encoding="utf-8")
    config = load_config(tmp_path)
    assert (config.transport, config.inliner, config.smtp.port) == ("eml", "css-inline", 587)


def test_premailer_inliner_loads(cli: Cli, workspace: Path) -> None:
    edit_config(workspace, 'inliner = "css-inline"', 'inliner = "premailer"')
    assert load_config(workspace).inliner == "premailer"
    result = cli("check", workspace / BLOG)
    assert_clean_exit(result, 0)
    assert f"{BLOG}: ok" in result.output


def test_unknown_setting_did_you_mean(cli: Cli, workspace: Path) -> None:
    path = edit_config(workspace, 'from = "', 'form = "')
    [problem] = config_problems(workspace)
    assert problem.file == str(path)
    assert problem.message == "unknown setting 'form' in [newsletter]"
    assert problem.hint == "did you mean 'from'?"

    result = cli("check", workspace / BLOG)
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}: error: unknown setting 'form' in [newsletter]")
    assert shown(result, "hint: did you mean 'from'?")
    assert shown(result, "newsletter.toml has errors")


def test_unknown_section_did_you_mean(workspace: Path) -> None:
    edit_config(workspace, "\n[smtp]\n", "\n[smpt]\n")
    [problem] = config_problems(workspace)
    assert problem.message == "unknown section [smpt]"
    assert problem.hint == "did you mean 'smtp'?"


def test_bad_transport(cli: Cli, workspace: Path) -> None:
    path = edit_config(workspace, 'transport = "eml"', 'transport = "email"')
    [problem] = config_problems(workspace)
    assert problem.message == "[send] transport 'email' is not one we know"
    assert problem.hint == "use one of: eml, smtp"
    result = cli("check", workspace / BLOG)
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}: error: [send] transport 'email' is not one we know")


@pytest.mark.parametrize("port", ['"587"', '"five eight seven"', "true", "587.5"])
def test_port_must_be_a_number(cli: Cli, workspace: Path, port: str) -> None:
    path = edit_config(workspace, "port = 587", f"port = {port}")
    [problem] = config_problems(workspace)
    assert problem.message == "[smtp] port must be a number"
    result = cli("check", workspace / BLOG)
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}: error: [smtp] port must be a number")


def test_every_problem_at_once(workspace: Path) -> None:
    edit_config(workspace, 'from = "', 'form = "')
    edit_config(workspace, 'transport = "eml"', 'transport = "smpt"')
    edit_config(workspace, "port = 587", 'port = "587"')
    edit_config(workspace, 'inliner = "css-inline"', 'inliner = "premailler"')
    messages = [p.message for p in config_problems(workspace)]
    assert sorted(messages) == sorted(
        [
            "unknown setting 'form' in [newsletter]",
            "[send] transport 'smpt' is not one we know",
            "[smtp] port must be a number",
            "[build] inliner 'premailler' is not one we know",
        ]
    )


def test_bad_sender_address(workspace: Path) -> None:
    edit_config(
        workspace,
        'reply_to = "Communications Team <comms@riverside.example.org>"',
        'reply_to = "Communications Team <comms at riverside>"',
    )
    [problem] = config_problems(workspace)
    assert problem.message.startswith("[newsletter] reply_to 'Communications Team <comms at")
    assert "is not a valid address" in problem.message


def test_invalid_toml_names_file_and_line(cli: Cli, workspace: Path) -> None:
    path = edit_config(workspace, "[send]\n", "[send\n")
    line = path.read_text(encoding="utf-8").splitlines().index("[send") + 1
    [problem] = config_problems(workspace)
    assert problem.file == str(path)
    assert problem.line == line
    assert problem.col == 6
    assert problem.message.startswith("is not valid TOML: ")
    assert "(at line" not in problem.message

    result = cli("check", workspace / BLOG)
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}:{line}:6: error: is not valid TOML: Expected ']'")
    assert shown(result, "newsletter.toml has errors")


def test_config_not_utf8(cli: Cli, workspace: Path) -> None:
    path = workspace / CONFIG_NAME
    path.write_bytes(path.read_bytes().replace(b"Children's", b"Caf\xe9 Children's"))
    [problem] = config_problems(workspace)
    assert problem.message == "is not UTF-8 text"
    result = cli("check", workspace / BLOG)
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}: error: is not UTF-8 text")


def test_a_setting_outside_any_section_says_where_it_belongs(tmp_path: Path) -> None:
    (tmp_path / "newsletter.toml").write_text('host = "mail.example.org"\n', encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_config(tmp_path)
    [problem] = caught.value.problems
    assert problem.message == "the setting 'host' is not under any [section]"
    assert problem.hint == "move it below the [smtp] line"


# --------------------------------------------------------------------------- what mail can carry
# Each of these once loaded and then failed at send time, inside MessageTemplate.


def check_says(cli: Cli, message: str, hint: str) -> None:
    """The one problem load_config finds, and that `newsletter check` shows it."""
    [problem] = config_problems(cli.workspace)
    assert (problem.message, problem.hint) == (message, hint)
    result = cli("check", cli.workspace / BLOG)
    assert_clean_exit(result, 1)
    assert shown(result, f"{cli.workspace / CONFIG_NAME}: error: {message}")
    assert shown(result, f"hint: {hint}")


def sends(config: Config) -> bool:
    """Whether MessageTemplate, which builds the headers, takes the config."""
    issue = Variant(
        slug="2025-02-13-steve-kay-blog",
        audiences=frozenset(),
        subject="News",
        preheader="",
        html="<p>News</p>",
        text="News",
        fields=frozenset(),
        required=frozenset(),
    )
    try:
        MessageTemplate(issue, config, date=datetime(2025, 2, 13, tzinfo=UTC))
    except ValueError:
        return False
    return True


DOMAIN_HINT = (
    "write just the name, such as news.example.org: letters, digits and hyphens, "
    "with dots between the parts (no spaces, https:// or /)"
)
ASCII_HINT = 'use the address your IT department gives you, such as "News <news@example.org>"'
UNSUBSCRIBE_HINT = (
    "give the web page where people unsubscribe (https://…) or the address that takes "
    "unsubscribe requests (mailto:unsubscribe@example.org)"
)
ENCODE_HINT = (
    "percent-encode it (a space as %20, < as %3C, > as %3E), or ask whoever runs the "
    "page for the exact link"
)


@pytest.mark.parametrize(
    "domain",
    [
        "news riverside.example.org",
        "https://news.riverside.example.org/",
        "news.riverside.example.org.",
        "nëws.riverside.example.org",
    ],
)
def test_bad_domain(cli: Cli, workspace: Path, domain: str) -> None:
    edit_config(workspace, 'domain = "news.riverside.example.org"', f'domain = "{domain}"')
    check_says(
        cli,
        f"[newsletter] domain '{domain}' is not a domain name, which the Message-ID and "
        "List-Id headers need",
        DOMAIN_HINT,
    )
    assert not sends(Config(root=workspace, domain=domain))


SHIPPED = {
    "from": 'from = "Riverside Schools and Learning <news@riverside.example.org>"',
    "reply_to": 'reply_to = "Communications Team <comms@riverside.example.org>"',
}
WEB_URL = 'web_url = "https://news.riverside.example.org/"'
PRIVATE_LINKS = (
    'url = "https://news.riverside.example.org/u/"\nmailto = "unsubscribe@riverside.example.org"\n'
)


def one_unsubscribe(workspace: Path, url: str) -> None:
    """The shipped settings with one [newsletter] unsubscribe address for everyone
    instead of the private links of [unsubscribe] (which take precedence)."""
    edit_config(workspace, PRIVATE_LINKS, "")
    edit_config(workspace, WEB_URL, f'{WEB_URL}\nunsubscribe = "{url}"')


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("from", "Ünïcode <fé@exämple.org>"),
        ("reply_to", "Communications Team <comms@rïverside.example.org>"),
        ("reply_to", "Zoë <zoë@riverside.example.org>"),
    ],
)
def test_non_ascii_address(cli: Cli, workspace: Path, key: str, value: str) -> None:
    edit_config(workspace, SHIPPED[key], f'{key} = "{value}"')
    check_says(
        cli,
        f"[newsletter] {key} '{value}' cannot be sent: mail servers only take "
        "plain-letter (ASCII) addresses here",
        ASCII_HINT,
    )
    [attr] = [o.attr for o in options() if (o.section, o.key) == ("newsletter", key)]
    changes: dict[str, Any] = {attr: value}
    assert not sends(replace(Config(root=workspace), **changes))


def test_address_with_a_line_break(cli: Cli, workspace: Path) -> None:
    edit_config(
        workspace,
        SHIPPED["from"],
        'from = "Riverside Schools and Learning\\n<news@riverside.example.org>"',
    )
    check_says(
        cli,
        "[newsletter] from has a line break in it, which a mail header cannot carry",
        'write it on one line, such as "News <news@example.org>"',
    )
    sender = "Riverside Schools and Learning\n<news@riverside.example.org>"
    assert not sends(Config(root=workspace, sender=sender))


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("https://riverside.example.org/un subscribe", "a space"),
        ("https://riverside.example.org/unsub?<id>", "'<' and '>'"),
        ("mailto:unsubscribe@riverside.example.org?subject=stop <now>", "a space and '<' and '>'"),
        ("https://riverside.example.org/désabonner", "'é'"),
    ],
)
def test_unsubscribe_a_header_cannot_carry(cli: Cli, workspace: Path, url: str, what: str) -> None:
    one_unsubscribe(workspace, url)
    check_says(
        cli,
        f"[newsletter] unsubscribe '{url}' cannot go into a mail header: it has {what} in it",
        ENCODE_HINT,
    )
    assert not sends(Config(root=workspace, unsubscribe=url))


@pytest.mark.parametrize(
    "url", ["ftp://riverside.example.org/unsubscribe", "http://riverside.example.org/unsub"]
)
def test_unsubscribe_must_be_https_or_mailto(cli: Cli, workspace: Path, url: str) -> None:
    one_unsubscribe(workspace, url)
    check_says(
        cli,
        f"[newsletter] unsubscribe '{url}' must start with https:// or mailto:",
        UNSUBSCRIBE_HINT,
    )


@pytest.mark.parametrize("url", ["news.riverside.example.org", "mailto:news@riverside.example.org"])
def test_web_url_must_be_a_web_page(cli: Cli, workspace: Path, url: str) -> None:
    edit_config(workspace, 'web_url = "https://news.riverside.example.org/"', f'web_url = "{url}"')
    check_says(
        cli,
        f"[newsletter] web_url '{url}' must start with https:// or http://",
        "give the address where the archive folder is published, such as https://news.example.org/",
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (SHIPPED["from"], 'from = "Zoë’s “Schools” News <news@riverside.example.org>"'),
        (None, "https://riverside.example.org/unsub?e={{ email }}&id={{ member_id }}"),
        (None, "https://riverside.example.org/unsub?n={{ name | default('a b') }}"),
        ('domain = "news.riverside.example.org"', 'domain = "XN--nws-wma.Example.ORG"'),
    ],
)
def test_what_loads_also_sends(workspace: Path, old: str | None, new: str) -> None:
    if old is None:  # an unsubscribe address: one for everyone
        one_unsubscribe(workspace, new)
    else:
        edit_config(workspace, old, new)
    assert sends(load_config(workspace))


@pytest.mark.parametrize(
    ("old", "new", "message", "hint"),
    [
        ("port = 587", "port = 70000", "[smtp] port 70000 is out of range", "from 1 to 65535"),
        ("port = 587", "port = 0", "[smtp] port 0 is out of range", "from 1 to 65535"),
        ("rate = 10", "timeout = 0", "[smtp] timeout 0 is out of range", "more than 0"),
    ],
)
def test_numbers_out_of_range(
    cli: Cli, workspace: Path, old: str, new: str, message: str, hint: str
) -> None:
    edit_config(workspace, old, new)
    check_says(cli, message, f"use a number {hint}")


# --------------------------------------------------------------------------- declared once


def test_options_in_reference_order() -> None:
    assert [(o.section, o.key) for o in options()] == [
        ("newsletter", "name"),
        ("newsletter", "organisation"),
        ("newsletter", "address"),
        ("newsletter", "lang"),
        ("newsletter", "from"),
        ("newsletter", "reply_to"),
        ("newsletter", "domain"),
        ("newsletter", "web_url"),
        ("newsletter", "logo"),
        ("newsletter", "unsubscribe"),
        ("build", "inliner"),
        ("build", "out"),
        ("send", "transport"),
        ("send", "outbox"),
        ("send", "outbox_is_delivery"),
        ("send", "ledger"),
        ("send", "ledger_password_env"),
        ("send", "bounce_address"),
        ("images", "mode"),
        ("archive", "folder"),
        ("unsubscribe", "url"),
        ("unsubscribe", "mailto"),
        ("unsubscribe", "secret_env"),
        ("smtp", "host"),
        ("smtp", "port"),
        ("smtp", "security"),
        ("smtp", "username"),
        ("smtp", "password_env"),
        ("smtp", "auth"),
        ("smtp", "tenant"),
        ("smtp", "client_id"),
        ("smtp", "client_secret_env"),
        ("smtp", "certificate_env"),
        ("smtp", "key_file_env"),
        ("smtp", "allow_plain_auth"),
        ("smtp", "ca_file"),
        ("smtp", "connections"),
        ("smtp", "rate"),
        ("smtp", "per_minute"),
        ("smtp", "per_hour"),
        ("smtp", "per_day"),
        ("smtp", "tries"),
        ("smtp", "timeout"),
        ("smtp", "data_timeout"),
        ("dkim", "domain"),
        ("dkim", "selector"),
        ("dkim", "key_env"),
        ("dkim", "key_file"),
        ("dkim", "algorithm"),
        ("inbox", "host"),
        ("inbox", "port"),
        ("inbox", "security"),
        ("inbox", "username"),
        ("inbox", "password_env"),
        ("inbox", "folder"),
        ("inbox", "path"),
        ("inbox", "ca_file"),
    ]


def test_an_option_says_all_about_itself() -> None:
    declared = {(o.section, o.key): o for o in options()}
    sender = declared["newsletter", "from"]
    assert (sender.attr, sender.type_name, sender.default, sender.choices) == (
        "sender",
        "mail address",
        "Newsletter <newsletter@example.org>",
        (),
    )
    port = declared["smtp", "port"]
    assert (port.type_name, port.default, port.example) == ("whole number", 587, 587)
    security = declared["smtp", "security"]
    assert (security.type_name, security.choices) == ("text", ("starttls", "tls", "none"))
    out = declared["build", "out"]
    assert (out.attr, out.type_name, out.default) == ("build_dir", "path", "build")
    assert declared["smtp", "rate"].default == 10.0
    assert declared["newsletter", "reply_to"].default is None
    for option in declared.values():
        assert option.help.endswith(".") and "\n" not in option.help, option


def test_defaults_are_what_an_empty_config_gives(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text("", encoding="utf-8")
    config = load_config(tmp_path)
    assert config == Config(root=tmp_path)
    for option in options():
        holder = {"smtp": config.smtp, "dkim": config.dkim, "inbox": config.inbox}.get(
            option.section, config
        )
        value = getattr(holder, option.attr)
        shown_as = value.as_posix() if isinstance(value, Path) else value
        assert shown_as == option.default, option


def test_every_example_loads(tmp_path: Path) -> None:
    lines: list[str] = []
    for option in options():
        if f"[{option.section}]" not in lines:
            lines.append(f"[{option.section}]")
        lines.append(f"{option.key} = {json.dumps(option.example, ensure_ascii=False)}")
    (tmp_path / CONFIG_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(tmp_path)
    assert config.sender == "Riverside Schools and Learning <news@riverside.example.org>"
    assert config.smtp.ca_file == tmp_path / "certs/council-ca.pem"
    assert config.smtp.rate == 10.0 and isinstance(config.smtp.rate, float)
    assert sends(config)
