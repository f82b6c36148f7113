"""Bad input is a clear message, never a hang, a bug report or a terminal trick.

Each case here once made ``newsletter`` hang, answer "Something went wrong
inside newsletter" (exit 70), or pass something harmful through: an issue
built to be slow or deep, invisible characters, Markdown nested hundreds of
levels deep, a recipient's name that rewrites the terminal, and a "picture"
from Word that is really a web page. Now each is exit 1 with one
``file:line:col: error: …`` line and a hint, fast, or is made harmless.

Everything goes through real files in a copy of the shipped workspace and the
real command, as a comms officer would run it.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import docx  # python-docx, in the test extra
import pytest
from click.testing import CliRunner, Result

from sender.cli import cli

ISSUE = """\
title: A test issue
date: 2025-03-03
template: blog
preheader: One line about it
sections:
  - heading: News
    body: |
      Some news.
"""
BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"
# The smallest GIF there is (1x1): a real picture by its bytes, that python-docx can place.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
WEB_PAGE = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>\n"


def invoke(workspace: Path, *args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["-w", str(workspace), *args])
    return result, time.monotonic() - started


def write_issue(workspace: Path, name: str, content: str | bytes) -> Path:
    path = workspace / "newsletters" / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def refused(result: Result, seconds: float, where: str) -> str:
    """Exit 1, quickly, with a short message whose first problem is at ``where``
    (file:line or file:line:col); no traceback, no bug report. The problem's line."""
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert result.exit_code == 1, output
    assert seconds < 5, f"took {seconds:.1f} s"
    assert len(output) < 2000, f"{len(output)} characters of output"
    assert "Something went wrong" not in output and "Traceback" not in output
    first = next(line for line in output.splitlines() if ": error: " in line)
    assert first.startswith(where + ": error: "), output
    assert "    hint: " in output, output
    return first


# -- 1. the issue's YAML ----------------------------------------------------------------------


def alias_bomb(levels: int) -> str:
    """'Billion laughs': each anchor names nine of the one before; the last one, a key."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefghi", "bcdefghij"[: levels - 1], strict=False):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    last = "abcdefghij"[levels - 1]
    return ISSUE + "\n".join(lines) + f"\n? *{last}\n: x\n"


def test_an_alias_bomb_is_refused_at_its_first_anchor(workspace: Path) -> None:
    text = alias_bomb(7)  # 9**7 "lol"s once expanded; it took 80 s and a 289 MB message
    assert len(text) - len(ISSUE) < 400
    path = write_issue(workspace, "bomb.yaml", text)
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, "newsletters/bomb.yaml:9:4")
    assert "anchors and aliases (&name, *name) are not allowed in an issue" in line


def test_a_single_alias_is_refused_too(workspace: Path) -> None:
    path = write_issue(
        workspace,
        "alias.yaml",
        ISSUE.replace("title: A test issue", "title: &t A test issue") + "subject: *t\n",
    )
    result, seconds = invoke(workspace, "check", str(path))
    refused(result, seconds, "newsletters/alias.yaml:1:8")


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (" " + "[" * 500 + "]" * 500, "9:30"),
        (" " + "{a: " * 500 + "}" * 500, "9:84"),
        ("\n  " + "- " * 500 + "x", "10:41"),
    ],
    ids=["brackets", "braces", "dashes"],
)
def test_values_nested_hundreds_deep_are_refused(workspace: Path, value: str, where: str) -> None:
    path = write_issue(workspace, "nested.yaml", ISSUE + f"sign_off:{value}\n")
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, f"newsletters/nested.yaml:{where}")
    assert "nested too deeply" in line


@pytest.mark.parametrize(
    ("escape", "expected"),
    [
        ("\\udc80", "'\\udc80' is half of a character"),
        ("\\e[2J", "an invisible control character (U+001B ESC)"),
        ("\\x00", "an invisible control character (U+0000 NUL)"),
    ],
    ids=["lone-surrogate", "ESC", "NUL"],
)
def test_an_escape_no_email_can_carry_is_refused_where_it_is_written(
    workspace: Path, escape: str, expected: str
) -> None:
    path = write_issue(
        workspace, "escape.yaml", ISSUE.replace("A test issue", f'"A test {escape}"')
    )
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, "newsletters/escape.yaml:1:16")
    assert expected in line


def test_a_character_written_as_two_escapes_is_one_character(workspace: Path) -> None:
    # The way JSON writes an emoji: two halves, which make one whole character.
    path = write_issue(
        workspace, "emoji.yaml", ISSUE.replace("A test issue", '"Well done \\ud83c\\udf89"')
    )
    result, _ = invoke(workspace, "build", str(path), "-a", "everyone")
    assert result.exit_code == 0, result.output
    built = workspace / "build" / "emoji.everyone.txt"
    assert "Well done \N{PARTY POPPER}" in built.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("raw", "name"),
    [(b"\x00", "U+0000"), ("\x9b".encode(), "U+009B"), (b"\x1b", "U+001B")],
    ids=["NUL", "C1", "ESC"],
)
def test_invisible_control_characters_are_found_by_line_and_column(
    workspace: Path, raw: bytes, name: str
) -> None:
    content = ISSUE.encode("utf-8").replace(b"Some news.", b"Some " + raw + b"news.")
    path = write_issue(workspace, "control.yaml", content)
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, "newsletters/control.yaml:8:12")
    assert name in line and "position" not in result.output


def test_a_key_that_is_a_list_is_named_plainly(workspace: Path) -> None:
    path = write_issue(workspace, "key.yaml", ISSUE + "? [" + ", ".join(["x"] * 1000) + "]\n: y\n")
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, "newsletters/key.yaml:9:3")
    assert "Node" not in line


def test_a_web_address_too_broken_to_read_is_named(workspace: Path) -> None:
    button = '    button: {label: Book a place, url: "https://[::1/book"}\n'
    path = write_issue(workspace, "broken.yaml", ISSUE + button)
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, "newsletters/broken.yaml:9:40")
    assert "'https://[::1/book' is not a web address" in line


# -- 2. Markdown nested hundreds of levels deep -----------------------------------------------


def deep_body(body: str) -> str:
    return ISSUE.replace("Some news.", "Some news.\n\n      " + body)


@pytest.mark.parametrize(
    ("body", "levels"),
    [
        ("*" * 500 + "deep" + "*" * 500, "251 levels"),
        ("> " * 500 + "deep", "20 or more levels"),
        ("- " * 500 + "deep", "20 or more levels"),
    ],
    ids=["emphasis", "quotes", "lists"],
)
def test_markdown_nested_hundreds_deep_is_an_error_at_its_line(
    workspace: Path, body: str, levels: str
) -> None:
    path = write_issue(workspace, "deep.yaml", deep_body(body))
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, "newsletters/deep.yaml:10:7")
    assert f"section 1 body: this text nests too deeply ({levels})" in line


def test_build_and_send_stop_before_writing_anything(workspace: Path) -> None:
    path = write_issue(workspace, "deep.yaml", deep_body("*" * 500 + "deep" + "*" * 500))
    out = workspace / "built"
    result, seconds = invoke(workspace, "build", str(path), "--out", str(out))
    refused(result, seconds, "newsletters/deep.yaml:10:7")
    result, seconds = invoke(workspace, "send", str(path), "--list", "managers", "--yes")
    refused(result, seconds, "newsletters/deep.yaml:10:7")
    assert not out.exists()
    assert not (workspace / "outbox").exists()


def test_markdown_nested_a_few_levels_is_fine(workspace: Path) -> None:
    body = "- one\n\n        > quoted **bold *and italic [link](https://example.org)***"
    path = write_issue(workspace, "fine.yaml", deep_body(body))
    result, _ = invoke(workspace, "check", str(path))
    assert result.exit_code == 0, result.output


# -- 3. terminal escape sequences from a list -------------------------------------------------

TRICKS = ["\x1b]0;pwned\x07", "\x1b[2J", "\x1b[31m", "\x9b2J", "\u202e", "\u2066", "\x08"]


def add_row(workspace: Path, row: str) -> None:
    """``row`` as the first person on the headteachers list, so every sample shows it."""
    path = workspace / "recipients" / "headteachers.csv"
    header, rest = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(f"{header}\n{row}\n{rest}", encoding="utf-8")


def assert_harmless(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", output)


def test_a_name_cannot_reach_the_terminal_as_control_codes_in_send(workspace: Path) -> None:
    name = "Eve" + "".join(TRICKS) + " Mallory"
    add_row(workspace, f"eve@example.org,Eve,{name},Oakfield")
    result, _ = invoke(workspace, "send", BLOG, "-l", "headteachers", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Eve" in result.output and "Mallory <eve@example.org>" in result.output
    assert_harmless(result.output)


def test_a_bad_row_cannot_reach_the_terminal_as_control_codes_in_lists(workspace: Path) -> None:
    add_row(workspace, "not-an-address" + "".join(TRICKS) + ",Eve,Eve,Oakfield")
    result, _ = invoke(workspace, "lists")
    assert result.exit_code == 1, result.output
    assert "recipients/headteachers.csv:2: error: 'not-an-address" in result.output
    assert_harmless(result.output)


# -- 4. a "picture" that is really a web page ---------------------------------------------------


def word_document(path: Path, picture: bytes, *, as_html: bool) -> None:
    """A briefing with one picture under its first heading, its bytes swapped for
    ``picture``; ``as_html``: stored as word/media/*.html, of type text/html."""
    document = docx.Document()
    document.add_heading("Summer Update - 7 July 2025", 0)
    document.add_paragraph("Dear colleagues,")
    document.add_heading("Sports Day", 1)
    document.add_paragraph("Every school took part this year.")
    document.add_picture(io.BytesIO(GIF))
    document.add_heading("Holidays", 1)
    document.add_paragraph("Enjoy the break.")
    buffer = io.BytesIO()
    document.save(buffer)
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source,
        zipfile.ZipFile(path, "w") as target,
    ):
        for name in source.namelist():
            data = source.read(name)
            if name.startswith("word/media/"):
                data = picture
                name = re.sub(r"\.\w+$", ".html", name) if as_html else name
            elif as_html and name == "word/_rels/document.xml.rels":
                data = re.sub(rb"(media/image\d+)\.gif", rb"\1.html", data)
            elif as_html and name == "[Content_Types].xml":
                html = b'<Default Extension="html" ContentType="text/html"/>'
                data = data.replace(b"<Default ", html + b"<Default ", 1)
            target.writestr(name, data)


@pytest.mark.parametrize("as_html", [True, False], ids=["named-html", "named-gif"])
def test_import_leaves_out_a_picture_that_is_a_web_page(
    workspace: Path, tmp_path: Path, as_html: bool
) -> None:
    source = tmp_path / "summer.docx"
    word_document(source, WEB_PAGE, as_html=as_html)
    out = workspace / "newsletters" / "summer.yaml"
    result, _ = invoke(workspace, "import", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert not (workspace / "newsletters" / "images").exists()
    draft = out.read_text(encoding="utf-8")
    assert "image:" not in draft
    assert re.search(r"# CHECK: picture 1 was left out: it is a web page \(HTML\)", draft)
    assert "picture 1 was left out: it is a web page (HTML)" in result.output
    check, _ = invoke(workspace, "check", str(out))
    assert check.exit_code == 0, check.output


def test_import_keeps_a_real_picture(workspace: Path, tmp_path: Path) -> None:
    source = tmp_path / "summer.docx"
    word_document(source, GIF, as_html=False)
    out = workspace / "newsletters" / "summer.yaml"
    result, _ = invoke(workspace, "import", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (workspace / "newsletters" / "images" / "summer-1.gif").read_bytes() == GIF
    assert 'image: {src: "images/summer-1.gif"' in out.read_text(encoding="utf-8")


def picture_issue(workspace: Path, picture: bytes, name: str) -> Path:
    images = workspace / "newsletters" / "images"
    images.mkdir(exist_ok=True)
    (images / name).write_bytes(picture)
    image = f'    image: {{src: "images/{name}", alt: "Children running"}}\n'
    return write_issue(workspace, "pictured.yaml", ISSUE + image)


def test_check_refuses_a_local_picture_that_is_a_web_page(workspace: Path) -> None:
    path = picture_issue(workspace, WEB_PAGE, "race.png")
    result, seconds = invoke(workspace, "check", str(path))
    line = refused(result, seconds, "newsletters/pictured.yaml:9:18")
    assert "section 1 image 'images/race.png' is a web page (HTML)" in line
    result, seconds = invoke(workspace, "send", str(path), "--list", "managers", "--yes")
    refused(result, seconds, "newsletters/pictured.yaml:9:18")
    assert not (workspace / "outbox").exists() and not (workspace / "archive").exists()


def test_check_accepts_a_local_picture_that_is_one(workspace: Path) -> None:
    path = picture_issue(workspace, GIF, "race.gif")
    result, _ = invoke(workspace, "check", str(path))
    assert result.exit_code == 0, result.output
