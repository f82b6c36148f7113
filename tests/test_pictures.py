"""Local pictures end to end: checked, made light, embedded or hosted, archived.

Real files made with Pillow (a 4,000 x 3,000 phone photo with an EXIF
orientation and a GPS position, a PNG with transparency, incompressible noise,
an animated GIF), real sends through the ``.eml`` outbox and aiosmtpd, a real
HTTP server on 127.0.0.1 for ``hosted`` mode and Debian's chromium for what a
reader sees. Every message is parsed back with ``policy.default`` and must
have no defects in any part.
"""

from __future__ import annotations

import email
import email.policy
import functools
import hashlib
import io
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import PIL.ExifTags
import pytest
from click.testing import Result
from conftest import Cli, body
from PIL import Image, ImageChops, ImageDraw
from servers import Recorder, aiosmtpd

pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]

ISSUE = "newsletters/summer-fair.yaml"
SLUG = "summer-fair"
NAME = "Schools and Learning News"  # [newsletter] name of the shipped workspace
PHOTO_ALT = "Students at the fair"
BADGE_ALT = "The school badge"
COLUMN = 536  # the widest the templates show a picture, in CSS pixels

# The head of every issue in the check tests: sections start on line 6.
HEAD = """title: Pictures
date: 2025-03-01
template: blog
preheader: A short summary
sections:
"""

FAIR = """title: Summer fair
date: 2025-06-20
template: blog
preheader: Photos from the summer fair
greeting: Dear {{ first_name | default("colleagues") }},
intro: |
  The summer fair in pictures.
sections:
  - heading: At the fair
    body: |
      Students ran the stalls all afternoon.
    image: {src: images/fair.jpg, alt: Students at the fair}
  - heading: Our new badge
    body: |
      The badge the students drew:

      ![The school badge](images/badge.png)
  - heading: For headteachers
    body: |
      A note for headteachers only.
    audiences: [headteachers]
sign_off: |
  See you soon.
"""


# -- pictures made for the tests ---------------------------------------------


def phone_photo() -> bytes:
    """A 4,000 x 3,000 JPEG as a phone saves it: stored on its side with EXIF
    orientation 6 (turn 90 degrees clockwise to show), a GPS position, and a red
    block in the stored top-left corner, which shows at the top right when upright."""
    w, h = 4000, 3000
    grad = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 40)
    channels = [
        ImageChops.add(grad, ImageChops.offset(noise, 7 * k, 3 * k), 2, -64 + 20 * k)
        for k in range(3)
    ]
    image = Image.merge("RGB", channels)
    ImageDraw.Draw(image).rectangle((0, 0, 399, 299), fill=(255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(PIL.ExifTags.IFD.GPSInfo).update(
        {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo() -> bytes:
    data = phone_photo()
    # The photo is what the test says it is: GPS and orientation present.
    with Image.open(io.BytesIO(data)) as check:
        assert check.size == (4000, 3000)
        assert check.getexif()[0x0112] == 6
        assert check.getexif().get_ifd(PIL.ExifTags.IFD.GPSInfo)[1] == "N"
    return data


def badge_png(path: Path) -> None:
    """600 x 300, left half fully transparent, right half opaque blue."""
    image = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((300, 0, 599, 299), fill=(0, 0, 255, 255))
    image.save(path)


def noise_png(path: Path, w: int, h: int) -> None:
    """A PNG no encoder can make smaller."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", (w, h), os.urandom(w * h * 3)).save(path)


def fair_issue(workspace: Path, photo: bytes) -> Path:
    images = workspace / "newsletters" / "images"
    images.mkdir(parents=True, exist_ok=True)
    (images / "fair.jpg").write_bytes(photo)
    badge_png(images / "badge.png")
    path = workspace / ISSUE
    path.write_text(FAIR, encoding="utf-8")
    return path


# -- workspace settings -------------------------------------------------------


def toml_set(workspace: Path, table: str, **values: str | bool) -> None:
    """Set keys at the top of a table of newsletter.toml (adding the table if need be);
    the keys must not be in the file yet."""
    config = workspace / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    for key in values:
        assert not re.search(rf"(?m)^{key} = ", text), key
    lines = "".join(
        f"{k} = {str(v).lower()}\n" if isinstance(v, bool) else f'{k} = "{v}"\n'
        for k, v in values.items()
    )
    if f"\n[{table}]\n" in text:
        text = text.replace(f"\n[{table}]\n", f"\n[{table}]\n{lines}", 1)
    else:
        text += f"\n[{table}]\n{lines}"
    config.write_text(text, encoding="utf-8")


def without(workspace: Path, key: str) -> None:
    """Take a key out of newsletter.toml."""
    config = workspace / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    assert re.search(rf"(?m)^{key} = ", text), key
    config.write_text(re.sub(rf"(?m)^{key} = .*\n", "", text), encoding="utf-8")


def use_smtp(workspace: Path, port: int) -> None:
    """[send] transport = smtp to aiosmtpd on 127.0.0.1, no TLS, no login."""
    config = workspace / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    start = text.index("\n[smtp]\n") + 1
    end = text.find("\n[", start)
    rest = text[end + 1 :] if end != -1 else ""
    text = text[:start].replace('transport = "eml"', 'transport = "smtp"')
    text += (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = 2\nrate = 0\n'
    )
    text += rest
    config.write_text(text, encoding="utf-8")


# -- reading messages ---------------------------------------------------------


def parse(raw: bytes) -> EmailMessage:
    """The message, parsed strictly; no defect in it or any of its parts."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert part.defects == [], (part.get_content_type(), part.defects)
    return msg


class Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.imgs.append(dict(attrs))


def imgs(html: str) -> list[dict[str, str | None]]:
    parser = Imgs()
    parser.feed(html)
    return parser.imgs


def html_of(msg: EmailMessage) -> str:
    return body(msg, "html")


def embedded(msg: EmailMessage) -> dict[str, EmailMessage]:
    """Checks multipart/alternative[text/plain, multipart/related[text/html, pictures]]
    and that every cid: in the HTML is one of the pictures; the pictures by Content-ID."""
    assert msg.get_content_type() == "multipart/alternative"
    top = list(msg.iter_parts())
    assert [p.get_content_type() for p in top] == ["text/plain", "multipart/related"]
    related = top[1]
    assert related.get_param("type") == "text/html"
    inner = list(related.iter_parts())
    assert [p.get_content_type() for p in inner] == ["text/html", "image/jpeg", "image/png"]
    pictures: dict[str, EmailMessage] = {}
    for part in inner[1:]:
        assert isinstance(part, EmailMessage)
        assert part["Content-Transfer-Encoding"] == "base64"
        assert part.get_content_disposition() == "inline"
        cid = str(part["Content-ID"])
        assert cid.startswith("<") and cid.endswith(">"), cid
        pictures[cid[1:-1]] = part
    html = str(inner[0].get_content())
    cids = [str(i["src"])[4:] for i in imgs(html) if str(i["src"]).startswith("cid:")]
    assert sorted(cids) == sorted(pictures), (cids, list(pictures))
    assert all(str(i["src"]).startswith("cid:") for i in imgs(html)), imgs(html)
    return pictures


def picture_checks(msg: EmailMessage, original: bytes) -> dict[str, int]:
    """The prepared photo and badge in one embedded message; their sizes."""
    pictures = embedded(msg)
    parts = {p.get_content_type(): p for p in pictures.values()}
    jpeg = parts["image/jpeg"].get_payload(decode=True)
    png = parts["image/png"].get_payload(decode=True)
    assert isinstance(jpeg, bytes) and isinstance(png, bytes)

    # The photo: upright (the red block of the stored top-left is at the top right),
    # 1,200 px wide, and no EXIF at all: no GPS position, no orientation left to apply.
    with Image.open(io.BytesIO(jpeg)) as photo:
        assert photo.format == "JPEG"
        assert photo.size == (1200, 1600)
        assert len(photo.getexif()) == 0, dict(photo.getexif())
        assert "exif" not in photo.info
        rgb = photo.convert("RGB")
        r, g, b = rgb.getpixel((1140, 80))  # type: ignore[misc]
        assert r > 200 and g < 80 and b < 80, (r, g, b)
        for corner in ((60, 80), (60, 1520), (1140, 1520)):
            r, g, b = rgb.getpixel(corner)  # type: ignore[misc]
            assert not (r > 200 and g < 80 and b < 80), (corner, r, g, b)
    assert b"Exif\x00\x00" not in jpeg and b"GPS" not in jpeg
    assert jpeg != original

    # The badge keeps its transparency.
    with Image.open(io.BytesIO(png)) as badge:
        assert badge.format == "PNG"
        assert badge.size == (600, 300)
        assert badge.mode == "RGBA" or "transparency" in badge.info, badge.mode
        rgba = badge.convert("RGBA")
        assert rgba.getpixel((10, 10))[3] == 0  # type: ignore[index]
        assert rgba.getpixel((590, 290)) == (0, 0, 255, 255)

    # Real sizes on the <img>, alt as written, never wider than the column.
    by_alt = {i["alt"]: i for i in imgs(html_of(msg))}
    assert (by_alt[PHOTO_ALT]["width"], by_alt[PHOTO_ALT]["height"]) == (
        str(COLUMN),
        str(round(1600 * COLUMN / 1200)),
    )
    assert (by_alt[BADGE_ALT]["width"], by_alt[BADGE_ALT]["height"]) == (
        str(COLUMN),
        str(round(300 * COLUMN / 600)),
    )
    text = body(msg, "plain")
    assert f"[Picture: {PHOTO_ALT}]" in text
    assert f"[Picture: {BADGE_ALT}]" in text
    assert "cid:" not in text
    return {"jpeg": len(jpeg), "png": len(png)}


def same_picture_bytes(messages: list[EmailMessage]) -> None:
    """Each picture is the same encoded text, and the same Content-ID, in every message."""
    seen: dict[str, set[str]] = {}
    for msg in messages:
        for cid, part in embedded(msg).items():
            seen.setdefault(cid, set()).add(str(part.get_payload()))
    assert len(seen) == 2, list(seen)
    assert all(len(encodings) == 1 for encodings in seen.values())


# -- check: each finding, exact message and place -------------------------------


def check(cli: Cli, workspace: Path, sections: str, *args: str) -> Result:
    path = workspace / "newsletters" / "pictures.yaml"
    path.write_text(HEAD + sections, encoding="utf-8")
    return cli("check", path, *args)


def findings(result: Result) -> list[str]:
    """The `file:line:col: severity: message` lines of check's output."""
    return [line for line in result.output.splitlines() if line.startswith("newsletters/")]


def test_check_missing_picture_file(cli: Cli, workspace: Path) -> None:
    result = check(
        cli,
        workspace,
        "  - heading: The fair\n"
        "    body: Words.\n"
        "    image: {src: images/missing.jpg, alt: Students at the fair}\n",
    )
    assert result.exit_code == 1, result.output
    assert findings(result) == [
        "newsletters/pictures.yaml:8:18: error: there is no picture file images/missing.jpg"
    ]


def test_check_web_page_saved_as_png_as_a_section_image(cli: Cli, workspace: Path) -> None:
    fake = workspace / "newsletters" / "images" / "fake.png"
    fake.parent.mkdir()
    fake.write_text("<!DOCTYPE html><html><body>Not a picture</body></html>\n", "utf-8")
    result = check(
        cli,
        workspace,
        "  - heading: The fair\n"
        "    body: Words.\n"
        "    image: {src: images/fake.png, alt: Students at the fair}\n",
    )
    assert result.exit_code == 1, result.output
    assert findings(result) == [
        "newsletters/pictures.yaml:8:18: error: section 1 image 'images/fake.png' is a web "
        "page (HTML), not a PNG, JPEG, GIF or WebP picture"
    ]


def test_check_web_page_saved_as_png_as_a_markdown_image(cli: Cli, workspace: Path) -> None:
    fake = workspace / "newsletters" / "images" / "fake.png"
    fake.parent.mkdir()
    fake.write_text("<!DOCTYPE html><html><body>Not a picture</body></html>\n", "utf-8")
    result = check(
        cli,
        workspace,
        "  - heading: A drawing\n"
        "    body: |\n"
        "      The drawing the students made:\n"
        "\n"
        "      ![A drawing of the school](images/fake.png)\n",
    )
    assert result.exit_code == 1, result.output
    # At the picture itself (line 10, column 7), as check points at a link in a body.
    assert findings(result) == [
        "newsletters/pictures.yaml:10:7: error: the picture images/fake.png is a web page "
        "(HTML), not a PNG, JPEG, GIF or WebP picture"
    ]


def test_check_picture_outside_the_issue_folder(cli: Cli, workspace: Path) -> None:
    noise_png(workspace / "outside.png", 20, 20)  # a real picture: it is where it is that is wrong
    result = check(
        cli,
        workspace,
        "  - heading: Outside\n"
        "    body: Words.\n"
        "    image: {src: ../outside.png, alt: A picture from elsewhere}\n",
    )
    assert result.exit_code == 1, result.output
    assert findings(result) == [
        "newsletters/pictures.yaml:8:18: error: the picture ../outside.png is outside the "
        "issue's folder"
    ]


def test_check_http_picture_is_a_warning(cli: Cli, workspace: Path) -> None:
    sections = (
        "  - heading: Remote\n"
        "    body: Words.\n"
        '    image: {src: "http://example.org/fair.jpg", alt: Students at the fair}\n'
    )
    result = check(cli, workspace, sections)
    assert result.exit_code == 0, result.output
    assert findings(result) == [
        "newsletters/pictures.yaml:8:18: warning: the picture http://example.org/fair.jpg is an "
        "http: address: many mail programs block unencrypted pictures"
    ]
    assert check(cli, workspace, sections, "--strict").exit_code == 1


def _prepared_sizes(workspace: Path) -> list[int]:
    return sorted(f.stat().st_size for f in (workspace / "build" / ".pictures").iterdir())


def test_check_more_than_1_mb_of_pictures_is_a_warning_naming_the_biggest(
    cli: Cli, workspace: Path
) -> None:
    images = workspace / "newsletters" / "images"
    noise_png(images / "small.png", 500, 400)  # about 600 KB each, whatever the encoder
    noise_png(images / "big.png", 540, 400)
    sections = (
        "  - heading: Small\n"
        "    body: Words.\n"
        "    image: {src: images/small.png, alt: Noise}\n"
        "  - heading: Big\n"
        "    body: Words.\n"
        "    image: {src: images/big.png, alt: More noise}\n"
    )
    result = check(cli, workspace, sections)
    assert result.exit_code == 0, result.output
    sizes = _prepared_sizes(workspace)
    assert len(sizes) == 2 and 1024 * 1024 < sum(sizes) < 10 * 1024 * 1024, sizes
    total, biggest = f"{sum(sizes) / 1024 / 1024:.1f} MB", f"{sizes[-1] / 1024:.0f} KB"
    # Said once for the issue (every version has the same pictures), at the biggest's src.
    assert findings(result) == [
        f"newsletters/pictures.yaml:11:18: warning: each email has {total} of pictures "
        f"in it; the biggest is images/big.png ({biggest}): slow on a phone"
    ]
    assert check(cli, workspace, sections, "--strict").exit_code == 1


def test_check_more_than_10_mb_of_pictures_is_an_error_and_send_refuses(
    cli: Cli, workspace: Path
) -> None:
    images = workspace / "newsletters" / "images"
    sections = ""
    for n, height in enumerate((1000, 1100, 900, 800)):  # about 3.6, 4.0, 3.2, 2.9 MB
        noise_png(images / f"noise{n}.png", 1200, height)
        sections += (
            f"  - heading: Noise {n}\n"
            "    body: Words.\n"
            f"    image: {{src: images/noise{n}.png, alt: Noise {n}}}\n"
        )
    result = check(cli, workspace, sections)
    assert result.exit_code == 1, result.output
    sizes = _prepared_sizes(workspace)
    assert sum(sizes) > 10 * 1024 * 1024, sizes
    total, biggest = f"{sum(sizes) / 1024 / 1024:.1f} MB", f"{sizes[-1] / 1024:.0f} KB"
    assert findings(result) == [
        f"newsletters/pictures.yaml:11:18: error: each email has {total} of pictures "
        f"in it; the biggest is images/noise1.png ({biggest}): too big to send"
    ]
    sent = cli("send", workspace / "newsletters/pictures.yaml", "--list", "managers", "--yes")
    assert sent.exit_code == 1, sent.output
    assert "too big to send" in sent.output
    assert not (workspace / "outbox").exists()


def test_check_animated_gif_wider_than_1200_px_is_a_warning(cli: Cli, workspace: Path) -> None:
    gif = workspace / "newsletters" / "images" / "wave.gif"
    gif.parent.mkdir()
    frames = [Image.new("RGB", (1300, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=200, loop=0)
    with Image.open(gif) as made:
        assert getattr(made, "is_animated", False) and made.size == (1300, 40)
    result = check(
        cli,
        workspace,
        "  - heading: Waving\n"
        "    body: Words.\n"
        "    image: {src: images/wave.gif, alt: A waving banner}\n",
    )
    assert result.exit_code == 0, result.output
    assert findings(result) == [
        "newsletters/pictures.yaml:8:18: warning: the picture images/wave.gif is an animated "
        "GIF 1300 px wide: it is sent as it is, as animations cannot be made smaller"
    ]
    assert gif.read_bytes()[:6] == b"GIF89a"  # the original is left as it was


def test_check_hosted_mode_without_web_url_is_an_error(cli: Cli, workspace: Path) -> None:
    without(workspace, "web_url")
    toml_set(workspace, "images", mode="hosted")
    badge_png(workspace / "newsletters" / "badge.png")
    result = check(
        cli,
        workspace,
        "  - heading: Badge\n    body: Words.\n    image: {src: badge.png, alt: The badge}\n",
    )
    assert result.exit_code == 1, result.output
    assert findings(result) == [
        "newsletters/pictures.yaml:1:8: error: [images] mode is hosted, but newsletter.toml "
        "has no [newsletter] web_url to publish the pictures at"
    ]


# -- embedded: through the outbox and through SMTP ---------------------------


def send_fair(cli: Cli, *more: str) -> Result:
    result = cli(
        "send",
        cli.workspace / ISSUE,
        "--list",
        "managers",
        "--list",
        "headteachers",
        "--yes",
        *more,
    )
    assert result.exit_code == 0, result.output
    return result


def test_two_pictures_embedded_through_the_eml_outbox(
    cli: Cli, workspace: Path, photo: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = fair_issue(workspace, photo)
    before = hashlib.sha256((path.parent / "images" / "fair.jpg").read_bytes()).hexdigest()
    send_fair(cli)
    files = sorted((workspace / "outbox" / SLUG).glob("*.eml"))
    assert len(files) > 10
    messages = [parse(f.read_bytes()) for f in files]
    sizes = [picture_checks(m, photo) for m in messages]
    same_picture_bytes(messages)
    # Someone on both lists and someone on one get different versions, same pictures.
    notes = {"A note for headteachers only." in body(m, "plain") for m in messages}
    assert notes == {True, False}
    biggest = max(f.stat().st_size for f in files)
    assert biggest < len(photo) / 4, (biggest, len(photo))
    # The original is never changed.
    assert hashlib.sha256((path.parent / "images" / "fair.jpg").read_bytes()).hexdigest() == before
    with capsys.disabled():
        print(
            f"\n[sizes] original photo {len(photo):,} B; prepared JPEG {sizes[0]['jpeg']:,} B; "
            f"prepared PNG {sizes[0]['png']:,} B; largest .eml {biggest:,} B"
        )


def test_two_pictures_embedded_through_smtp(cli: Cli, workspace: Path, photo: bytes) -> None:
    fair_issue(workspace, photo)
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        send_fair(cli)
    assert len(handler.messages) > 10
    messages = [parse(raw) for _, _, raw in handler.messages]
    for msg in messages:
        picture_checks(msg, photo)
    same_picture_bytes(messages)
    assert max(len(raw) for _, _, raw in handler.messages) < len(photo) / 4


@pytest.mark.browser
@pytest.mark.slow
def test_embedded_pictures_show_in_chromium(
    cli: Cli, workspace: Path, photo: bytes, browser: Any
) -> None:
    fair_issue(workspace, photo)
    send_fair(cli)
    eml = sorted((workspace / "outbox" / SLUG).glob("*.eml"))[0]
    msg = parse(eml.read_bytes())
    parts = {
        cid: (part.get_content_type(), part.get_payload(decode=True))
        for cid, part in embedded(msg).items()
    }
    # cid: URLs are served from the message's own parts, as a mail program does.
    html = re.sub(r'src="cid:([^"]+)"', r'src="https://pictures.invalid/\1"', html_of(msg))
    served: list[str] = []
    others: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        cid = url.removeprefix("https://pictures.invalid/")
        if cid in parts:
            served.append(cid)
            kind, data = parts[cid]
            r.fulfill(status=200, content_type=kind, body=data)
        else:
            others.append(url)
            r.abort()

    page = browser.new_page()
    try:
        page.route("**/*", route)
        page.set_content(html, wait_until="load")
        shown = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.alt, i.naturalWidth, i.naturalHeight, i.complete])"
        )
    finally:
        page.close()
    assert sorted(served) == sorted(parts)
    assert sorted(shown) == sorted([[PHOTO_ALT, 1200, 1600, True], [BADGE_ALT, 600, 300, True]]), (
        shown
    )
    assert others == []


# -- hosted: published and answering before anyone is sent to -----------------


class Site:
    """A folder served over HTTP on 127.0.0.1; every request's method and path kept."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def send_head(self) -> Any:
                site.requests.append((self.command, self.path))
                return super().send_head()

            def log_message(self, *_args: Any) -> None:
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "site")
    s.thread.start()
    try:
        yield s
    finally:
        s.server.shutdown()
        s.server.server_close()
        s.thread.join(5)


def test_hosted_mode_refuses_until_the_pictures_answer_then_links_them(
    cli: Cli, workspace: Path, photo: bytes, site: Site
) -> None:
    fair_issue(workspace, photo)
    web_url = f"http://127.0.0.1:{site.port}/news/"
    without(workspace, "web_url")
    toml_set(workspace, "newsletter", web_url=web_url)
    toml_set(workspace, "images", mode="hosted")
    published = f"2025/{SLUG}/images"
    photo_url, badge_url = f"{web_url}{published}/fair.jpg", f"{web_url}{published}/badge.png"
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        refused = cli(
            "send", workspace / ISSUE, "--list", "managers", "--list", "headteachers", "--yes"
        )
        assert refused.exit_code == 1, refused.output
        flat = re.sub(r"\s+", " ", refused.output)
        assert "2 picture(s) are not on the web yet" in flat, refused.output
        assert "Nothing was sent." in flat
        assert f"{photo_url} (answered 404 File not found)" in flat, refused.output
        output = refused.output.replace("\n", "")
        assert photo_url in output and badge_url in output, refused.output
        assert handler.messages == []
        assert sorted(site.requests) == [
            ("HEAD", f"/news/{published}/badge.png"),
            ("HEAD", f"/news/{published}/fair.jpg"),
        ]
        history = cli("history")
        assert "Nothing has been sent yet." in history.output, history.output
        if (workspace / "ledger.sqlite").exists():
            db = sqlite3.connect(workspace / "ledger.sqlite")
            try:
                assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone() == (0,)
                assert db.execute("SELECT COUNT(*) FROM sends").fetchone() == (0,)
            finally:
                db.close()
        # The send wrote the prepared pictures where the archive is published from.
        archive = workspace / "archive"
        with Image.open(archive / published / "fair.jpg") as written:
            assert written.size == (1200, 1600) and len(written.getexif()) == 0
        assert (archive / published / "badge.png").is_file()

        # Published: the archive folder uploaded to web_url.
        shutil.copytree(archive, site.folder / "news")
        sent = cli(
            "send", workspace / ISSUE, "--list", "managers", "--list", "headteachers", "--yes"
        )
        assert sent.exit_code == 0, sent.output
    assert len(handler.messages) > 10
    for _, _, raw in handler.messages:
        msg = parse(raw)
        # Linked, not embedded: no picture parts at all.
        assert [p.get_content_type() for p in msg.walk()] == [
            "multipart/alternative",
            "text/plain",
            "text/html",
        ]
        found = {str(i["alt"]): str(i["src"]) for i in imgs(html_of(msg))}
        assert found == {PHOTO_ALT: photo_url, BADGE_ALT: badge_url}
        assert "cid:" not in html_of(msg)
    # What the emails link is what is served: the prepared copies.
    with Image.open(site.folder / "news" / published / "fair.jpg") as served:
        assert served.size == (1200, 1600) and len(served.getexif()) == 0


# -- the archive ---------------------------------------------------------------


def test_archive_holds_the_prepared_copies_linked_relatively(
    cli: Cli, workspace: Path, photo: bytes
) -> None:
    fair_issue(workspace, photo)
    toml_set(workspace, "send", outbox_is_delivery=True)
    send_fair(cli)
    folder = workspace / "archive" / "2025" / SLUG

    def look() -> None:
        copy = (folder / "images" / "fair.jpg").read_bytes()
        assert copy != photo
        with Image.open(io.BytesIO(copy)) as published:
            assert published.size == (1200, 1600)
            assert len(published.getexif()) == 0
        assert b"Exif\x00\x00" not in copy and b"GPS" not in copy
        with Image.open(folder / "images" / "badge.png") as badge:
            assert badge.size == (600, 300) and badge.mode == "RGBA"
        # Nowhere in the archive are the original bytes.
        digest = hashlib.sha256(photo).digest()
        for file in (workspace / "archive").rglob("*"):
            if file.is_file():
                assert hashlib.sha256(file.read_bytes()).digest() != digest, file
        pages = sorted(folder.glob("*.html"))
        assert pages
        for page in pages:
            found = {str(i["alt"]): str(i["src"]) for i in imgs(page.read_text("utf-8"))}
            assert found == {PHOTO_ALT: "images/fair.jpg", BADGE_ALT: "images/badge.png"}

    look()
    shutil.rmtree(workspace / "archive")
    rebuilt = cli("archive")
    assert rebuilt.exit_code == 0, rebuilt.output
    look()


# -- the logo ---------------------------------------------------------------------


def test_logo_in_the_masthead_of_both_looks(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    logo = workspace / "images" / "logo.png"
    logo.parent.mkdir()
    Image.new("RGBA", (400, 100), (255, 255, 255, 255)).save(logo)
    toml_set(workspace, "newsletter", logo="images/logo.png")
    looks = {
        "blog": "newsletters/2025-02-13-steve-kay-blog.yaml",
        "briefing": "newsletters/2012-07-13-peter-duxbury-briefing.yaml",
    }
    for look, issue in looks.items():
        out = tmp_path / f"built-{look}"
        built = cli("build", workspace / issue, "--audience", "managers", "--out", out)
        assert built.exit_code == 0, built.output
        (page,) = out.glob("*.managers.html")
        html = page.read_text("utf-8")
        first = imgs(html)[0]  # the masthead comes first
        assert first["alt"] == NAME, (look, first)
        # build shows the prepared copy beside the page (a browser cannot open cid:).
        assert first["src"] == "images/logo.png", (look, first)
        assert (out / "images" / "logo.png").is_file()
        assert (first["width"], first["height"]) == ("200", "50"), (look, first)
        assert html.index(f'alt="{NAME}"') < html.index("<h1")

        sent = cli("send", workspace / issue, "--list", "managers", "--yes")
        assert sent.exit_code == 0, sent.output
        eml = sorted((workspace / "outbox" / Path(issue).stem).glob("*.eml"))[0]
        msg = parse(eml.read_bytes())
        related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
        assert len(related) == 1, look
        pictures = {
            str(p["Content-ID"])[1:-1]: p for p in related[0].iter_parts() if p["Content-ID"]
        }
        masthead = imgs(html_of(msg))[0]
        assert masthead["alt"] == NAME
        cid = str(masthead["src"]).removeprefix("cid:")
        assert cid in pictures, (look, cid, list(pictures))
        data = pictures[cid].get_payload(decode=True)
        assert isinstance(data, bytes)
        with Image.open(io.BytesIO(data)) as shown:
            assert shown.size == (400, 100)


# -- the cache ----------------------------------------------------------------------


def test_a_second_build_reuses_the_prepared_pictures(
    cli: Cli, workspace: Path, photo: bytes, tmp_path: Path
) -> None:
    fair_issue(workspace, photo)
    first = cli("build", workspace / ISSUE, "--out", tmp_path / "one")
    assert first.exit_code == 0, first.output
    cache = workspace / "build" / ".pictures"
    files = sorted(cache.iterdir())
    assert len(files) == 2, files  # the photo and the badge
    old = 1_600_000_000_000_000_000  # Sept 2020: a rewrite cannot keep it
    for f in files:
        os.utime(f, ns=(old, old))
    second = cli("build", workspace / ISSUE, "--out", tmp_path / "two")
    assert second.exit_code == 0, second.output
    assert sorted(cache.iterdir()) == files
    assert [f.stat().st_mtime_ns for f in files] == [old, old]
    one, two = (
        {
            p.relative_to(tmp_path / d).as_posix(): p.read_bytes()
            for p in (tmp_path / d).rglob("*")
            if p.is_file()
        }
        for d in ("one", "two")
    )
    assert one == two and one
    # The built pages show the prepared pictures beside them, linked relatively.
    assert one["images/fair.jpg"] == next(f for f in files if f.suffix == ".jpg").read_bytes()
