"""The import corpus (tests/data/import/corpus/, described in corpus.toml): briefings
written for these tests in the shapes they really arrive in — pasted and forwarded
emails, .eml, .msg, Word with a table and pictures, question and capitals headings,
signatures, CRLF, Windows-1252, no headings at all.

For each: the draft equals its golden file (UPDATE_GOLDEN=1 regenerates them, on
purpose; review the diff), 'newsletter check' passes on it, the facts in corpus.toml
are right, every sentence of the body is in the email's text part, and nothing from a
header block, quoted reply, footer or signature contact is.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import unicodedata
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import docx
import pytest
from conftest import REPO, Cli

from sender.importer import read_briefing, write_draft
from sender.placeholders import fill, split
from sender.workspace import Workspace

CORPUS = REPO / "tests" / "data" / "import" / "corpus"
GOLDEN = CORPUS / "golden"
CASES: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "corpus.toml").read_text("utf-8"))


def words(text: str) -> str:
    """Only the words, case-folded, one space apart: what a reader reads, whatever the
    markup, wrapping, numbering or link syntax around them."""
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(re.findall(r"[^\W_]+", text))


def source_text(path: Path) -> str:
    """The briefing's text, read without the importer: a text file decoded, the plain
    paragraphs and table cells of a Word document, an email's plain-text part."""
    data = path.read_bytes()
    if path.suffix == ".docx":
        document = docx.Document(str(path))
        parts = [p.text for p in document.paragraphs]
        for table in document.tables:
            parts += [cell.text for row in table.rows for cell in row.cells]
        return "\n\n".join(parts)
    if path.suffix == ".eml":
        email = BytesParser(policy=policy.default).parsebytes(data)
        plain = email.get_body(("plain",))
        assert plain is not None
        return str(plain.get_content())
    if path.suffix == ".msg":
        import extract_msg

        outlook: Any = extract_msg.openMsg(str(path))
        try:
            return str(outlook.body)
        finally:
            outlook.close()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252")
    return text.replace("\r\n", "\n")


def body_and_left_out(case: dict[str, Any], text: str) -> tuple[list[str], list[str]]:
    """(the body's sentences, the lines that must not be in the draft)."""
    left_out = case.get("left_out", [])
    used = case.get("used", [])
    lines = text.split("\n")
    quoted_from = case.get("quoted_from")
    if quoted_from:
        start = next(n for n, ln in enumerate(lines) if ln.startswith(quoted_from))
        excluded = [ln for ln in lines[start:] if words(ln)]
        lines = lines[:start]
    else:
        excluded = []
    kept: list[str] = []
    for line in lines:
        if any(marker in line for marker in left_out):
            excluded.append(line)
        elif not any(marker in line for marker in used):
            kept.append(line)
    sentences = []
    for para in re.split(r"\n\s*\n", "\n".join(kept)):
        joined = " ".join(para.split())
        if not joined or words(joined).startswith(words(case["title"])):
            continue  # the title line: its date is shown in the issue's own form
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", joined) if words(s)]
    return sentences, excluded


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Every case imported once into one workspace copy: (the draft, its text part)."""
    import shutil

    folder = tmp_path_factory.mktemp("corpus")
    for name in ("templates", "newsletters", "recipients"):
        shutil.copytree(REPO / name, folder / name)
    shutil.copy(REPO / "newsletter.toml", folder / "newsletter.toml")
    ws = Workspace.open(folder)
    out: dict[str, tuple[Path, str]] = {}
    for name, case in CASES.items():
        source = CORPUS / case["source"]
        draft = read_briefing(source, display=case["source"])
        path = folder / "newsletters" / f"{name}.yaml"
        write_draft(draft, path, display=f"newsletters/{name}.yaml", lists=ws.lists)
        issue = ws.load_issue(path)
        variant = ws.renderer.variant(issue, frozenset())
        text = fill(split(variant.text, "text"), None)
        out[name] = (path, text.rsplit("\n" + "-" * 76 + "\n", 1)[0])  # not the footer
    return out


def test_the_corpus_has_every_shape_the_issue_asks_for() -> None:
    assert len(CASES) >= 12
    shapes = " ".join(c["shape"] for c in CASES.values())
    for shape in (
        "pasted Outlook",
        "forwarded Gmail",
        ".eml with an HTML part, an inline picture",
        ".msg",
        "question headings",
        "capitals",
        "name and role on two lines",
        "Word: heading styles, a table",
        "alt text",
        "CRLF",
        "Windows-1252",
        "no headings",
    ):
        assert shape in shapes, shape
    raw = (CORPUS / CASES["crlf"]["source"]).read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    with pytest.raises(UnicodeDecodeError):
        (CORPUS / CASES["cp1252-email"]["source"]).read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", sorted(CASES))
def test_draft_matches_its_golden_file(imported: dict[str, tuple[Path, str]], name: str) -> None:
    path, _text = imported[name]
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(path.read_bytes())
    assert path.read_text("utf-8") == golden.read_text("utf-8"), (
        f"the draft of {name} differs from {golden.relative_to(REPO)}; if the change is "
        "intended, regenerate with UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_passes_and_the_facts_are_right(
    cli: Cli, imported: dict[str, tuple[Path, str]], name: str
) -> None:
    path, _text = imported[name]
    result = cli.at(path.parent.parent)("check", path)
    assert result.exit_code == 0, result.output
    case = CASES[name]
    issue = Workspace.open(path.parent.parent).load_issue(path)
    assert issue.title == case["title"]
    assert issue.date == dt.date.fromisoformat(case["date"])
    author = (issue.author.name, issue.author.role) if issue.author else None
    expected = tuple(case["author"]) if "author" in case else None
    assert author == expected
    assert [s.heading for s in issue.sections] == case["headings"]
    images = re.findall(r"images/[\w.-]+", path.read_text("utf-8"))
    assert len(images) == case.get("pictures", 0)
    for image in images:
        assert (path.parent / image).is_file()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_sentence_of_the_body_is_in_the_draft_and_nothing_the_email_added(
    imported: dict[str, tuple[Path, str]], name: str
) -> None:
    case = CASES[name]
    _path, text = imported[name]
    sent = f" {words(text)} "
    sentences, excluded = body_and_left_out(case, source_text(CORPUS / case["source"]))
    assert len(sentences) >= 5
    assert [s for s in sentences if f" {words(s)} " not in sent] == []
    for marker in case.get("left_out", []):  # each names a real line of the source
        assert any(marker in ln for ln in excluded), marker
    assert [ln for ln in excluded if f" {words(ln)} " in sent] == []


def test_import_lists_what_it_left_out_and_never_overwrites(cli: Cli, workspace: Path) -> None:
    source = CORPUS / CASES["outlook-paste"]["source"]
    out = workspace / "newsletters" / "paste.yaml"
    result = cli("import", source, "-o", out)
    assert result.exit_code == 0, result.output
    shown = result.output
    assert "Left out" in shown
    for what in ("header block", "quoted", "[cid:", "This email and any files", "T: 0121"):
        assert what in shown, what
    assert "Check" in shown and "year" in shown  # the CHECK notes are listed too
    before = out.read_bytes()
    again = cli("import", source, "-o", out)
    assert again.exit_code == 1 and "already exists" in again.output
    assert out.read_bytes() == before
