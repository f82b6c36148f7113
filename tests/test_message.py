"""The message stage: personalised, standards-clean MIME bytes, fast.

Every message is parsed back with the stdlib parser (policy.default) and must
have no defects; the bodies are also checked line by line as quoted-printable
and decoded by a second decoder (quopri), and display names by a decoder that
follows RFC 2047 to the letter (email.header.decode_header).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import quopri
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.header import decode_header
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sender.config import Config
from sender.message import (
    Envelope,
    MessageTemplate,
    MissingFieldError,
    check_fields,
    header_text,
    message_id,
    send_date,
)
from sender.placeholders import fill, split
from sender.recipient import Recipient
from sender.transports.smtp.session import dot_stuff
from sender.variant import Variant

EPOCH = 1739437200  # 2025-02-13 09:00:00 UTC
SUBJECT = "Steve Kay’s blog — 13 February"
HTML = (
    "<!doctype html>\n<html><body>\n"
    '<p>Dear {{ first_name | default("colleagues") }},</p>\n'
    '<p>News for {{ school | default("your school") }} this week.</p>\n'
    '<a href="https://example.org/u?e={{ email }}">Unsubscribe</a>\n'
    "</body></html>\n"
)
TEXT = (
    'Dear {{ first_name | default("colleagues") }},\n\n'
    'News for {{ school | default("your school") }} this week.\n\n'
    "Unsubscribe: https://example.org/u?e={{ email }}\n"
)
EXPECTED_HEADERS = [
    "Date",
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "X-Newsletter-Issue",
    "X-Auto-Response-Suppress",
    "Precedence",
    "MIME-Version",
    "Content-Type",
]
QP_LINE = re.compile(rb"(?:[!-<>-~ \t]|=[0-9A-F]{2})*=?")
MESSAGE_ID = re.compile(r"<[0-9a-f]{24}\.[a-z0-9-]+@news\.example\.org>")

# Hypothesis makes many messages; the deadline is about the slowest, not the mean.
many = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def variant(
    subject: str = SUBJECT,
    html: str = HTML,
    text: str = TEXT,
    audiences: frozenset[str] = frozenset({"headteachers"}),
) -> Variant:
    return Variant(
        slug="2025-02-13-steve-kay-blog",
        audiences=audiences,
        subject=subject,
        preheader="Out and about",
        html=html,
        text=text,
        fields=frozenset({"first_name", "school", "email"}),
        required=frozenset({"email"}),
    )


def config(tmp_path: Path | None = None, **overrides: str | None) -> Config:
    settings_: dict[str, str | None] = {
        "sender": "Riverside News <news@example.org>",
        "reply_to": "Communications Team <comms@example.org>",
        "domain": "news.example.org",
        "unsubscribe": "https://example.org/unsub",
        "name": "Schools and Learning News",
    }
    settings_.update(overrides)
    return Config(root=tmp_path or Path("."), **settings_)  # type: ignore[arg-type]


def person(
    email_: str = "zoe@example.org",
    name: str = "Zoë O'Connor",
    lists: tuple[str, ...] = ("headteachers",),
    rows: tuple[tuple[str, int], ...] = (("recipients/headteachers.csv", 2),),
    **fields: str,
) -> Recipient:
    return Recipient(
        email=email_, name=name, fields={"email": email_, **fields}, lists=lists, rows=rows
    )


def template(**kwargs: object) -> MessageTemplate:
    date = datetime.fromtimestamp(EPOCH, tz=UTC)
    v = kwargs.pop("variant", None) or variant()
    c = kwargs.pop("config", None) or config()
    return MessageTemplate(v, c, date=date, **kwargs)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    plain, html = list(msg.iter_parts())
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    return plain, html


def decoded(msg: EmailMessage) -> tuple[str, str]:
    """The two bodies as text, with the CRLF of the canonical form back to LF."""
    plain, html = parts(msg)
    return plain.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def raw_parts(data: bytes, boundary: str) -> list[tuple[bytes, bytes]]:
    """(part headers, encoded body) straight from the bytes, not via the parser."""
    body = data.split(b"\r\n\r\n", 1)[1]
    delimiter = b"--" + boundary.encode()
    assert body.startswith(delimiter + b"\r\n")
    chunks = body.split(b"\r\n" + delimiter)
    assert chunks[-1] == b"--\r\n"
    out = []
    for chunk in chunks[:-1]:
        chunk = chunk.removeprefix(delimiter).removeprefix(b"\r\n")
        head, _, encoded = chunk.partition(b"\r\n\r\n")
        out.append((head, encoded))
    return out


def assert_clean(data: bytes) -> EmailMessage:
    """Parses with no defects anywhere, CRLF only, lines within limits, valid QP."""
    msg = parse(data)
    assert msg.defects == []
    for name, value in msg.items():
        assert getattr(value, "defects", ()) == (), (name, value)
        assert "\r" not in value and "\n" not in value
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = parts(msg)
    for part, subtype in ((plain, "plain"), (html, "html")):
        assert part.defects == []
        assert part.get_content_type() == f"text/{subtype}"
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"

    assert b"\r" not in data.replace(b"\r\n", b"") and b"\n" not in data.replace(b"\r\n", b"")
    assert data.endswith(b"\r\n")
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        assert len(line) <= 998
    boundary = msg.get_boundary()
    assert boundary is not None and "==" in boundary
    for part_head, encoded in raw_parts(data, boundary):
        for line in part_head.split(b"\r\n"):
            assert len(line) <= 78
        for line in encoded.split(b"\r\n"):
            assert len(line) <= 76, line
            assert QP_LINE.fullmatch(line), line
            assert not line.endswith((b" ", b"\t")), line
            assert b"==" not in line
            assert not line.startswith((b".", b"From ")), line
    for line in data.split(b"\r\n"):
        assert not line.startswith(b"."), line
    return msg


def assert_folded(data: bytes) -> None:
    """Header lines within 78 octets; a Message-ID is one token and may pass it."""
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        assert len(line) <= 78 or line.startswith(b"Message-ID: <"), line


def compliant_display_name(data: bytes) -> str:
    """The To display name as RFC 2047 6.2 says to read it (words joined as is).

    Python's address parser puts a space between adjacent encoded words; the
    RFC says the whitespace between them is to be ignored.
    """
    raw = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
    phrase, _, _ = raw.rpartition(" <")
    if not phrase:
        return ""
    text = "".join(
        chunk.decode(charset or "ascii") if isinstance(chunk, bytes) else chunk
        for chunk, charset in decode_header(phrase)
    )
    if phrase.startswith('"'):
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def as_display_name(name: str) -> str:
    """What a name becomes in a header: controls dropped, blanks folded, trimmed."""
    return " ".join(re.split(r"[ \t]+", header_text("name", name).strip()))


def expected_bodies(v: Variant, fields: Mapping[str, str]) -> tuple[str, str]:
    def norm(s: str) -> str:
        return s.replace("\r\n", "\n").replace("\r", "\n")

    return norm(fill(split(v.text, "text"), fields)), norm(fill(split(v.html, "html"), fields))


# ---------------------------------------------------------------------------
# Structure


def test_message_is_clean_multipart_alternative(tmp_path: Path) -> None:
    t = MessageTemplate(variant(), config(tmp_path), date=datetime.fromtimestamp(EPOCH, tz=UTC))
    data = t.render(person(first_name="Zoë"))
    msg = assert_clean(data)
    assert msg["MIME-Version"] == "1.0"
    assert [name for name, _ in msg.items()] == EXPECTED_HEADERS
    text, html = decoded(msg)
    assert "Dear Zoë," in text and "Dear Zoë," in html
    assert "https://example.org/u?e=zoe%40example.org" in html
    assert "https://example.org/u?e=zoe@example.org" in text
    assert (text, html) == expected_bodies(variant(), person(first_name="Zoë").fields)


def test_default_used_when_field_missing_or_empty() -> None:
    t = template()
    for p in (person(), person(first_name="")):
        text, html = decoded(parse(t.render(p)))
        assert "Dear colleagues," in text and "Dear colleagues," in html


@pytest.mark.parametrize(
    "name",
    [
        "Zoë O'Connor",
        "陈静",
        "Łukasz",
        "Smith, John",
        'Dr "Bob" \\ Jones',
        "Dr. A. N. Other",
        "Mary-Jane d'Arcy-Łukaszewicz-Ó Súilleabháin of the Very Long Family Name Society",
        "=?utf-8?q?not_an_encoded_word?=",
    ],
)
def test_to_round_trips_name_and_address(name: str) -> None:
    data = template().render(person(name=name))
    msg = assert_clean(data)
    (address,) = msg["To"].addresses
    assert address.addr_spec == "zoe@example.org"
    assert compliant_display_name(data) == name
    # Python's own address parser agrees but for spaces where encoded words meet.
    assert address.display_name.replace(" ", "") == name.replace(" ", "")
    assert_folded(data)


def test_to_without_name_is_the_bare_address() -> None:
    data = template().render(person(name=""))
    assert b"\r\nTo: zoe@example.org\r\n" in data
    assert parse(data)["To"].addresses[0].display_name == ""


@pytest.mark.parametrize(
    "subject",
    [
        SUBJECT,
        "Plain ASCII subject",
        "Schulnachrichten: Größere Änderungen für alle Schulen im nächsten Schuljahr 2025/26",
        "区教育局简报：二月的新闻、活动和重要日期，请所有校长和经理阅读并转发给工作人员",
        "A subject that is entirely ASCII but long enough that it has to be folded onto "
        "more than one line of the header",
        "  spaces  around  ",
        "tabs\tinside",
        "looks like =?utf-8?q?an_encoded_word?= but is not",
    ],
)
def test_subject_round_trips(subject: str) -> None:
    data = template(variant=variant(subject=subject)).render(person())
    msg = assert_clean(data)
    assert msg["Subject"] == subject
    assert_folded(data)


def test_subject_placeholders_are_filled_as_raw_text() -> None:
    v = variant(subject='News for {{ school | default("your school") }} & you')
    t = template(variant=v)
    assert parse(t.render(person(school="St Mary's <C of E>")))["Subject"] == (
        "News for St Mary's <C of E> & you"
    )
    assert parse(t.render(person()))["Subject"] == "News for your school & you"


def test_from_and_reply_to() -> None:
    c = config(sender="Bürgerbüro Riverside <news@example.org>", reply_to=None)
    msg = assert_clean(template(config=c).render(person()))
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Bürgerbüro Riverside", "news@example.org")
    assert "Reply-To" not in msg
    msg = parse(template().render(person()))
    assert msg["Reply-To"].addresses[0].addr_spec == "comms@example.org"


def test_message_id_is_deterministic_and_per_recipient() -> None:
    a = message_id("2025-02-13-steve-kay-blog", "zoe@example.org", "news.example.org")
    assert a == message_id("2025-02-13-steve-kay-blog", "zoe@example.org", "news.example.org")
    assert MESSAGE_ID.fullmatch(a)
    b = message_id("2025-02-13-steve-kay-blog", "bob@example.org", "news.example.org")
    c = message_id("2012-07-13-briefing", "zoe@example.org", "news.example.org")
    assert len({a, b, c}) == 3
    t = template()
    msg = parse(t.render(person()))
    assert msg["Message-ID"] == a
    assert t.envelope(person()) == Envelope("news@example.org", "zoe@example.org", a)
    assert parse(t.render(person("bob@example.org", "Bob")))["Message-ID"] == b
    digest = hashlib.sha256(b"2025-02-13-steve-kay-blog\0zoe@example.org").hexdigest()[:24]
    assert a == f"<{digest}.2025-02-13-steve-kay-blog@news.example.org>"
    with pytest.raises(ValueError):
        message_id("slug", "zoe@example.org", "not a domain")


def test_test_send_is_marked_and_has_its_own_message_id() -> None:
    real = parse(template().render(person()))
    test = assert_clean(template(test=True).render(person()))
    assert test["Subject"] == "[TEST] " + SUBJECT
    assert MESSAGE_ID.fullmatch(test["Message-ID"])
    assert test["Message-ID"] != real["Message-ID"]


def test_out_of_office_replies_are_asked_not_to_come_back() -> None:
    """Exchange sends no out-of-office or auto-reply for X-Auto-Response-Suppress: OOF,
    AutoReply; other responders hold back for Precedence: bulk. A test copy too."""
    for test in (False, True):
        msg = parse(template(test=test).render(person()))
        assert msg.get_all("X-Auto-Response-Suppress") == ["OOF, AutoReply"]
        assert msg.get_all("Precedence") == ["bulk"]


def test_list_id_per_audience_set() -> None:
    both = variant(audiences=frozenset({"managers", "headteachers"}))
    msg = parse(template(variant=both).render(person()))
    assert msg["List-Id"] == "Schools and Learning News <headteachers.managers.news.example.org>"
    everyone = variant(audiences=frozenset())
    msg = parse(template(variant=everyone).render(person()))
    assert msg["List-Id"] == "Schools and Learning News <everyone.news.example.org>"
    odd = variant(audiences=frozenset({"All_Staff 2025"}))
    assert parse(template(variant=odd).render(person()))["List-Id"].endswith(
        "<all-staff-2025.news.example.org>"
    )


def test_list_unsubscribe_https_has_one_click_post() -> None:
    msg = assert_clean(template().render(person()))
    assert msg["List-Unsubscribe"] == "<https://example.org/unsub>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_list_unsubscribe_mailto_has_no_post() -> None:
    c = config(unsubscribe="mailto:unsubscribe@example.org?subject=unsubscribe")
    msg = assert_clean(template(config=c).render(person()))
    assert msg["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert "List-Unsubscribe-Post" not in msg


def test_no_unsubscribe_configured() -> None:
    msg = assert_clean(template(config=config(unsubscribe=None)).render(person()))
    assert "List-Unsubscribe" not in msg and "List-Unsubscribe-Post" not in msg


def test_unsubscribe_url_may_name_the_recipient() -> None:
    c = config(unsubscribe="https://example.org/unsub?e={{ email }}")
    msg = assert_clean(template(config=c).render(person("o'neil+news@example.org")))
    assert msg["List-Unsubscribe"] == "<https://example.org/unsub?e=o%27neil%2Bnews%40example.org>"
    with pytest.raises(ValueError):
        template(config=config(unsubscribe="https://example.org/un sub"))


def test_date_from_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    assert send_date() == datetime(2025, 2, 13, 9, 0, tzinfo=UTC)
    t = MessageTemplate(variant(), config())
    msg = parse(t.render(person()))
    assert msg["Date"] == "Thu, 13 Feb 2025 09:00:00 +0000"
    assert msg["Date"].datetime == datetime(2025, 2, 13, 9, 0, tzinfo=UTC)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        send_date()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert abs((send_date() - datetime.now(UTC)).total_seconds()) < 60


def test_date_is_fixed_once_per_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    t = MessageTemplate(variant(), config())
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH + 3600))
    assert parse(t.render(person()))["Date"] == "Thu, 13 Feb 2025 09:00:00 +0000"


def test_same_inputs_give_identical_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    first = MessageTemplate(variant(), config()).render(person(first_name="Zoë"))
    second = MessageTemplate(variant(), config()).render(person(first_name="Zoë"))
    assert first == second
    other = MessageTemplate(variant(), config()).render(person(first_name="Zoe"))
    assert other != first


# ---------------------------------------------------------------------------
# Personalisation and escaping


def test_markup_in_data_is_shown_not_obeyed() -> None:
    v = variant(
        html='<p title="{{ first_name }}">Dear {{ first_name }},</p>'
        '<a href="https://example.org/p?n={{ first_name }}">x</a>\n',
        text="Dear {{ first_name }},\nhttps://example.org/p?n={{ first_name }}\n",
    )
    msg = assert_clean(template(variant=v).render(person(first_name="<b>Bob</b> & Co")))
    text, html = decoded(msg)
    assert "Dear &lt;b&gt;Bob&lt;/b&gt; &amp; Co," in html
    assert 'title="&lt;b&gt;Bob&lt;/b&gt; &amp; Co"' in html
    assert "n=%3Cb%3EBob%3C%2Fb%3E%20%26%20Co" in html
    assert "<b>" not in html
    assert "Dear <b>Bob</b> & Co," in text


@pytest.mark.parametrize(
    "value",
    [
        "x" * 500,
        "word " * 100,
        "trailing spaces   ",
        "trailing tab\t",
        "\tleading tab",
        "a=b==c=",
        "=3D=20=\r\n",
        "Zoë Łukasz 陈静 🎉" * 20,
        ".hidden dot",
        "From the director",
        "two\nlines\n.dotted\nFrom here\n",
        "windows\r\nline\rendings",
        "--==nl_0123==",
        "",
        " ",
        "\x00\x01\x7f",
    ],
)
def test_bodies_decode_to_exactly_the_filled_text(value: str) -> None:
    v = variant(html=HTML + ".{{ school }}\nFrom {{ school }} \n", text=TEXT + "{{ school }}")
    p = person(first_name=value.replace("\r", "").replace("\n", "") or "x", school=value)
    fields = dict(p.fields)
    if not value:
        # An empty value counts as missing; this placeholder has no default.
        with pytest.raises(MissingFieldError):
            template(variant=v).render(p)
        return
    data = template(variant=v).render(p)
    msg = assert_clean(data)
    assert decoded(msg) == expected_bodies(v, fields)
    # A second, independent decoder agrees.
    boundary = msg.get_boundary()
    assert boundary is not None
    (_, plain_qp), (_, html_qp) = raw_parts(data, boundary)
    assert quopri.decodestring(plain_qp).decode().replace("\r\n", "\n") == decoded(msg)[0]
    assert quopri.decodestring(html_qp).decode().replace("\r\n", "\n") == decoded(msg)[1]


def test_literal_lines_that_need_care() -> None:
    html = (
        ".starts with a dot\nFrom the start\n"
        + "long " * 40
        + "\ntrailing space \n"
        + "=" * 100
        + "\n"
        + "ñ" * 100
        + "\n{{ first_name }}{{ first_name }}\n\n{{ first_name }}"
    )
    v = variant(html=html, text=html)
    p = person(first_name="Zoë")
    msg = assert_clean(template(variant=v).render(p))
    assert decoded(msg) == expected_bodies(v, p.fields)


def test_render_output_needs_no_dot_stuffing() -> None:
    v = variant(text=".\n..\n{{ first_name }}\n", html=".x\n")
    data = template(variant=v).render(person(first_name=".\n.."))
    assert dot_stuff(data) == data
    assert dot_stuff(b".a\r\nb\r\n.\r\n") == b"..a\r\nb\r\n..\r\n"


# ---------------------------------------------------------------------------
# Headers can never be forged through data


@many
@given(name=st.text(), school=st.text())
def test_data_never_adds_header_lines(name: str, school: str) -> None:
    v = variant(subject='News for {{ school | default("your school") }}')
    p = person(name=name, school=school)
    if any(c in name + school for c in "\r\n"):
        with pytest.raises(ValueError):
            template(variant=v).render(p)
        return
    data = template(variant=v).render(p)
    msg = assert_clean(data)
    assert [n for n, _ in msg.items()] == EXPECTED_HEADERS
    assert compliant_display_name(data) == as_display_name(name)
    assert msg["To"].addresses[0].addr_spec == "zoe@example.org"
    assert msg["Subject"] == header_text("subject", f"News for {school or 'your school'}")


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "Bob\r\nBcc: victim@example.org"},
        {"name": "Bob\nX-Evil: 1"},
        {"school": "x\rBcc: victim@example.org"},
    ],
)
def test_line_breaks_in_header_values_are_refused(bad: dict[str, str]) -> None:
    v = variant(subject='News for {{ school | default("your school") }}')
    with pytest.raises(ValueError, match="line break"):
        who = person(name=bad["name"]) if "name" in bad else person(school=bad["school"])
        template(variant=v).render(who)


@pytest.mark.parametrize("address", ["a@b.org\r\nBcc: c@d.org", "a b@c.org", "zoë@example.org"])
def test_unusable_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        template().render(person(address))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen: list[tuple[str, str, tuple[str, ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(("start", tag, tuple(a for a, _ in attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.seen.append(("end", tag, ()))

    def handle_comment(self, _data: str) -> None:
        self.seen.append(("comment", "", ()))

    def handle_decl(self, decl: str) -> None:
        self.seen.append(("decl", decl, ()))


def _tags(html: str) -> list[tuple[str, str, tuple[str, ...]]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser.seen


MARKUP_HTML = (
    "<!doctype html>\n<html><body>"
    '<p class="greeting" title="{{ first_name }}">Dear {{ first_name }},</p>\n'
    '<a href="https://example.org/p?n={{ first_name }}&amp;x=1">link</a>'
    "<table><tr><td>{{ first_name }}</td></tr></table>\n"
    "</body></html>\n"
)


@many
@given(value=st.text(min_size=1))
def test_data_never_adds_markup(value: str) -> None:
    v = variant(html=MARKUP_HTML)
    t = template(variant=v)
    plain = decoded(parse(t.render(person(first_name="Plain"))))[1]
    msg = assert_clean(t.render(person(first_name=value)))
    html = decoded(msg)[1]
    assert _tags(html) == _tags(plain)
    assert html == expected_bodies(v, person(first_name=value).fields)[1]


_literal = st.text().filter(lambda s: "{{" not in s and "{%" not in s and "{#" not in s)


@many
@given(
    pieces=st.lists(_literal, min_size=1, max_size=5),
    value=st.text(min_size=1),
)
def test_bodies_round_trip_for_any_text(pieces: list[str], value: str) -> None:
    text = "{{ first_name }}".join(pieces)
    v = variant(html=text, text=text)
    p = person(first_name=value)
    msg = assert_clean(template(variant=v).render(p))
    assert decoded(msg) == expected_bodies(v, p.fields)


# ---------------------------------------------------------------------------
# Missing data is found before sending


def test_missing_field_without_default_is_reported_with_rows() -> None:
    v = variant(html=HTML + "<p>{{ school }}</p>", text=TEXT + "{{ school }}\n")
    people = [
        person("a@example.org", "A", rows=(("recipients/headteachers.csv", 2),), school="X"),
        person("b@example.org", "B", rows=(("recipients/headteachers.csv", 3),)),
        person("c@example.org", "C", rows=(("recipients/headteachers.csv", 7),), school=""),
        person(
            "d@example.org",
            "D",
            lists=("headteachers", "managers"),
            rows=(("recipients/managers.csv", 4),),
        ),
    ]
    both = variant(audiences=frozenset({"headteachers", "managers"}))
    problems = check_fields([v, both], people)
    assert len(problems) == 1
    (problem,) = problems
    assert problem.file == "recipients/headteachers.csv"
    assert problem.line == 3
    assert "'school'" in problem.message and "lines 3, 7" in problem.message
    assert problem.hint is not None and "default" in problem.hint
    assert problem.severity == "error"
    with pytest.raises(MissingFieldError, match="school"):
        template(variant=v).render(people[1])


def test_fields_with_defaults_need_no_data() -> None:
    assert check_fields([variant()], [person(), person("b@example.org", "")]) == []


def test_line_break_in_a_header_value_is_reported() -> None:
    v = variant(subject="For {{ school }}")
    people = [
        person("a@example.org", "A\nB", school="X"),
        person("b@example.org", "B", rows=(("recipients/headteachers.csv", 5),), school="Y\r"),
    ]
    problems = check_fields([v], people)
    assert sorted((p.line, p.message.split("'")[1]) for p in problems) == [
        (2, "name"),
        (5, "school"),
    ]


def test_unsubscribe_placeholders_are_checked_when_config_given() -> None:
    c = config(unsubscribe="https://example.org/unsub?id={{ member_id }}")
    assert check_fields([variant()], [person()]) == []
    (problem,) = check_fields([variant()], [person()], config=c)
    assert "'member_id'" in problem.message


def test_addresses_that_cannot_go_into_headers_are_reported() -> None:
    people = [person("zoë@example.org", rows=(("recipients/managers.csv", 9),))]
    (problem,) = check_fields([variant()], people)
    assert (problem.file, problem.line) == ("recipients/managers.csv", 9)
    assert "address" in problem.message


def test_field_names_match_columns_whatever_their_case() -> None:
    from sender.placeholders import fill, split

    segments = split("Dear {{ First_Name }}", "text")
    assert fill(segments, {"first_name": "Zoë"}) == "Dear Zoë"
