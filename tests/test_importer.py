"""newsletter import: briefings as written (.txt, .docx) -> draft YAML issues.

Everything goes through real files: the seeds, fixtures in tests/data/import/,
and Word documents made here with python-docx (a hyperlink through its oxml
layer, which has no API for one; a PNG written with zlib and struct).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import docx  # python-docx, in the test extra: a missing one fails, never skips
import pytest
from click.testing import Result
from conftest import REPO, Cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The seed-completeness check of the shipped issues, reused as is.
from test_render import SEED_FOR, norm, seed_units

from sender.importer import TODO_ALT, read_briefing, write_draft
from sender.issue import Issue
from sender.placeholders import fill, split
from sender.workspace import Workspace

SEEDS = REPO / "tests" / "seeds"
DATA = REPO / "tests" / "data" / "import"
SHIPPED = Workspace.open(REPO)
BLOG_SEED = "000_d054e88fefd954a7.txt"
BRIEFING_SEED = "002_1298972c9c446115.txt"
# The blog seed's headings, as a reader of the seed sees them: short lines alone.
BLOG_HEADINGS = [
    "Out and About",
    "MAT CEO’s – Trust Leaders",
    "Birmingham Careers Service",
    "Inspiring Futures Event",
    "Local Ed 2025 Conference, LGA",
    "Birmingham Children’s Trust",
    "Youth Review",
    "Youth Strategy",
    "Finally…",
]


def import_ok(cli: Cli, briefing: Path, out: Path, *args: object) -> Issue:
    result = cli("import", briefing, "-o", out, *args)
    assert result.exit_code == 0, result.output
    return Workspace.open(cli.workspace).load_issue(out)


def text_part(workspace: Path, issue: Issue) -> str:
    variant = Workspace.open(workspace).renderer.variant(issue, frozenset())
    return fill(split(variant.text, "text"), None)


def html_part(workspace: Path, issue: Issue) -> str:
    variant = Workspace.open(workspace).renderer.variant(issue, frozenset())
    return fill(split(variant.html, "html"), None)


def seed_headings(seed: str) -> list[str]:
    text = (SEEDS / seed).read_text(encoding="utf-8")
    numbered = [m.group(1) for m in re.finditer(r"^\d+\. (.+)$", text, re.M)]
    if numbered:
        return numbered
    lines = [ln.strip() for ln in text.split("\n")]
    assert all(h in lines for h in BLOG_HEADINGS)  # each stands alone in the seed
    return BLOG_HEADINGS


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- the seeds --------------------------------------------------------------------------------


@pytest.mark.parametrize(("shipped_stem", "seed"), sorted(SEED_FOR.items()))
def test_seed_import_keeps_every_paragraph(
    cli: Cli,
    workspace: Path,
    shipped_stem: str,  # noqa: ARG001 (names the case in the test id)
    seed: str,
) -> None:
    issue = import_ok(cli, SEEDS / seed, workspace / "newsletters" / "imported.yaml")
    text = norm(text_part(workspace, issue))
    units = seed_units((SEEDS / seed).read_text(encoding="utf-8"))
    assert len(units) > 30
    assert [u for u in units if norm(u) not in text] == []


@pytest.mark.parametrize(("shipped_stem", "seed"), sorted(SEED_FOR.items()))
def test_seed_import_matches_the_hand_written_issue(
    cli: Cli,
    workspace: Path,
    shipped_stem: str,
    seed: str,
) -> None:
    issue = import_ok(cli, SEEDS / seed, workspace / "newsletters" / "imported.yaml")
    shipped = Workspace.open(workspace).load_issue(
        workspace / "newsletters" / f"{shipped_stem}.yaml"
    )
    headings = [s.heading for s in issue.sections]
    assert headings == seed_headings(seed)
    assert headings == [s.heading for s in shipped.sections]
    # Paragraphs and lists land in the same sections as the hand-written issue put them.
    assert [norm(s.body) for s in issue.sections] == [norm(s.body) for s in shipped.sections]
    assert issue.title == shipped.title
    assert issue.numbered == shipped.numbered
    assert issue.template == shipped.template
    assert issue.author is not None and shipped.author is not None
    assert issue.author.name == shipped.author.name
    assert all(s.audiences == () for s in issue.sections)  # everyone, until the officer says
    assert issue.preheader


def test_blog_seed_title_date_author_intro_and_sign_off(cli: Cli, workspace: Path) -> None:
    out = workspace / "newsletters" / "imported.yaml"
    issue = import_ok(cli, SEEDS / BLOG_SEED, out)
    shipped = Workspace.open(workspace).load_issue(
        workspace / "newsletters" / "2025-02-13-steve-kay-blog.yaml"
    )
    assert issue.date == shipped.date  # "… - 13 February 2025" in the title
    assert issue.author == shipped.author  # "Steve Kay, Director of …" under the title
    assert norm(issue.subtitle or "") == norm(shipped.subtitle or "")  # the pasted line's rest
    assert issue.greeting == "Dear colleagues"
    assert norm(issue.intro or "") == norm(shipped.intro or "")
    assert norm(issue.sign_off or "") == norm(shipped.sign_off or "")
    yaml_text = out.read_text(encoding="utf-8")
    assert "# CHECK:" in yaml_text and "run together" in yaml_text


def test_briefing_seed_without_a_year_gets_a_flagged_date(cli: Cli, workspace: Path) -> None:
    out = workspace / "newsletters" / "imported.yaml"
    issue = import_ok(cli, SEEDS / BRIEFING_SEED, out)
    # "Peter Duxbury's July briefing": July, and 2012 is the year the text names most.
    assert (issue.date.year, issue.date.month) == (2012, 7)
    yaml_text = out.read_text(encoding="utf-8")
    before_date = yaml_text.split("\ndate:", 1)[0].rsplit("\n", 3)
    assert any("CHECK:" in line for line in before_date)
    assert "the year" in yaml_text
    assert issue.sign_off is None  # it ends with a paragraph, not closing lines


def test_default_output_path_and_template(cli: Cli, workspace: Path) -> None:
    result = cli("import", SEEDS / BRIEFING_SEED)
    assert result.exit_code == 0, result.output
    out = workspace / "newsletters" / "2012-07-01-peter-duxburys-july-briefing.yaml"
    assert out.exists()
    yaml_text = out.read_text(encoding="utf-8")
    assert "\ntemplate: briefing\n" in yaml_text and "\nnumbered: true\n" in yaml_text
    # What it recognised and what it was unsure about, on the terminal too.
    assert "10 (numbered)" in result.output
    assert "Leadership, Leadership, Leadership!" in result.output
    assert "date:" in result.output and "CHECK" in result.output
    blog = cli("import", SEEDS / BLOG_SEED, "--template", "briefing")
    assert blog.exit_code == 0, blog.output
    written = workspace / "newsletters" / "2025-02-13-steve-kays-blogpost.yaml"
    assert "\ntemplate: briefing\n" in written.read_text(encoding="utf-8")


def test_unknown_template_is_a_usage_error(cli: Cli, workspace: Path) -> None:
    result = cli("import", SEEDS / BLOG_SEED, "--template", "blgo")
    assert result.exit_code == 2
    assert "blog" in result.output
    assert not list((workspace / "newsletters").glob("*blogpost*"))


# -- the output is a valid issue, and is never overwritten by accident ---------------------------


def test_output_passes_check_and_force_is_needed_to_overwrite(cli: Cli, workspace: Path) -> None:
    out = workspace / "newsletters" / "draft.yaml"
    first = cli("import", SEEDS / BLOG_SEED, "-o", out)
    assert first.exit_code == 0, first.output
    check = cli("check", "--strict", out)
    assert check.exit_code == 0, check.output
    assert ": ok" in check.output

    out.write_text(out.read_text(encoding="utf-8") + "# edited by the officer\n", encoding="utf-8")
    again = cli("import", SEEDS / BRIEFING_SEED, "-o", out)
    assert again.exit_code == 1
    assert "already exists" in again.output and "--force" in again.output
    assert "draft.yaml" in again.output
    assert out.read_text(encoding="utf-8").endswith("# edited by the officer\n")
    no_traceback(again)

    forced = cli("import", SEEDS / BRIEFING_SEED, "-o", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert "Peter Duxbury" in out.read_text(encoding="utf-8")


def test_awkward_text_is_escaped_not_lost(cli: Cli, workspace: Path) -> None:
    """Markdown and template syntax in a briefing come out as the words written."""
    out = workspace / "newsletters" / "tricky.yaml"
    issue = import_ok(cli, DATA / "tricky.txt", out)
    text = norm(text_part(workspace, issue))
    for line in [
        # "*three*" is the writer's emphasis: italic in the email, the word in the text.
        "Welcome back. This term has three priorities, snake_case_names, _underlined_ words, "
        "`code`, [brackets] and a back\\slash. Costs went up 5% & more: see &amp; notes.",
        "2012. What a year that was, and it still shapes our plans.",
        "# of pupils on roll is now 1,200.",
        "===",
        "See https://example.org/dates. Questions to admissions@example.org please.",
        "- Term starts 3 March",
        "- No clubs that week",
        "- Exams from 12 June",
        "- Jane Smith – Head of Admissions",
        "- John Brown – Finance Officer",
    ]:
        assert norm(line) in text
    # Template syntax is broken up (the loader accepted it) and the officer is told.
    assert "{ { weird }}" in text and "{ % if x %}logic{ % endif %}" in text
    assert "{{" not in text_part(workspace, issue).split("Template bits", 1)[1].split("\n")[0]
    assert "placeholder" in out.read_text(encoding="utf-8")
    # Links are links; headings, the nested list and the sign-off are recognised.
    html = html_part(workspace, issue)
    assert "has <em>three</em> priorities" in html
    assert 'href="https://example.org/dates"' in html
    assert 'href="mailto:admissions@example.org"' in html
    assert [s.heading for s in issue.sections] == ["Key Dates", "Contacts"]
    assert "\n  - No clubs that week" in issue.sections[0].body
    assert issue.greeting == "Dear all,"
    assert norm(issue.sign_off or "") == "Best wishes, Jane"
    assert (issue.date.year, issue.date.month) == (2025, 3)


# -- Word documents ---------------------------------------------------------------------------


def png(width: int = 3, height: int = 2) -> bytes:
    """A small red PNG, made without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def add_hyperlink(paragraph: object, url: str, text: str) -> None:
    """python-docx has no hyperlink API: a w:hyperlink run with an external relationship."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    r_id = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)  # type: ignore[attr-defined]
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), r_id)
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)  # type: ignore[attr-defined]


def make_docx(path: Path, picture: bytes) -> None:
    doc = docx.Document()
    doc.add_heading("Spring Update - 3 March 2025", 0)
    doc.add_paragraph("Dear colleagues,")
    doc.add_paragraph("A short introduction to this term's news.")
    doc.add_heading("Out and About", 1)
    p = doc.add_paragraph("We visited ")
    p.add_run("three schools").bold = True
    p.add_run(" and an ")
    p.add_run("outstanding").italic = True
    p.add_run(" college. Read more on ")
    add_hyperlink(p, "https://example.org/visits", "the visits page")
    p.add_run(".")
    doc.add_paragraph("Queensbridge School", style="List Bullet")
    doc.add_paragraph("Hive College", style="List Bullet")
    doc.add_picture(io.BytesIO(picture))
    doc.add_heading("Careers Service", 1)
    doc.add_paragraph("The review has finished.")
    doc.add_paragraph("Hope to see you soon!")
    doc.add_paragraph("Steve")
    doc.save(str(path))


def test_word_document_imports_with_formatting_links_lists_and_picture(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    source = tmp_path / "Spring update.docx"
    picture = png()
    make_docx(source, picture)
    out = workspace / "newsletters" / "spring.yaml"
    result = cli("import", source, "-o", out)
    assert result.exit_code == 0, result.output
    yaml_text = out.read_text(encoding="utf-8")
    assert "**three schools**" in yaml_text
    assert "*outstanding*" in yaml_text
    assert "[the visits page](https://example.org/visits)" in yaml_text
    assert "- Queensbridge School\n      - Hive College" in yaml_text

    issue = Workspace.open(workspace).load_issue(out)
    assert issue.title == "Spring Update"
    assert issue.date.isoformat() == "2025-03-03"
    assert issue.greeting == "Dear colleagues,"
    assert [s.heading for s in issue.sections] == ["Out and About", "Careers Service"]
    image = issue.sections[0].image
    assert image is not None and image.alt == TODO_ALT
    assert image.src == "images/spring-1.png"
    assert (out.parent / image.src).read_bytes() == picture
    assert "picture" in result.output and TODO_ALT not in result.output
    assert "CHECK: replace the alt text" in yaml_text  # flagged beside the image
    assert norm(issue.sign_off or "") == "Hope to see you soon! Steve"
    html = html_part(workspace, issue)
    assert "<strong>three schools</strong>" in html and "<em>outstanding</em>" in html
    assert 'href="https://example.org/visits"' in html
    assert re.search(r"<li[^>]*>Queensbridge School</li>", html)

    check = cli("check", out)
    assert check.exit_code == 0, check.output

    # Its picture is not overwritten either without --force.
    out.unlink()
    again = cli("import", source, "-o", out)
    assert again.exit_code == 1 and "spring-1.png" in again.output
    assert cli("import", source, "-o", out, "--force").exit_code == 0


def test_the_same_briefing_as_text_and_as_word_gives_the_same_sections(tmp_path: Path) -> None:
    source = tmp_path / "b.docx"
    make_docx(source, png())
    from_word = read_briefing(source)
    text = tmp_path / "b.txt"
    text.write_text(
        "Spring Update - 3 March 2025\n\nDear colleagues,\n\n"
        "A short introduction to this term's news.\n\nOut and About\n\n"
        "We visited three schools and an outstanding college. Read more on the visits page.\n\n"
        "• Queensbridge School\n• Hive College\n\nCareers Service\n\n"
        "The review has finished.\n\nHope to see you soon!\n\nSteve\n",
        encoding="utf-8",
    )
    from_text = read_briefing(text)
    assert [s.heading for s in from_word.sections] == [s.heading for s in from_text.sections]
    assert (from_word.title, from_word.date, from_word.greeting, from_word.sign_off) == (
        from_text.title,
        from_text.date,
        from_text.greeting,
        from_text.sign_off,
    )


# -- bad input: a clear message naming the file, never a traceback ---------------------------------


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


BAD = {
    "empty.txt": (b"", "is empty"),
    "blank.txt": (b"\n  \r\n\t\n", "is empty"),
    "random.txt": (bytes((i * 97 + 13) % 256 for i in range(3000)), "not text"),
    "photo.docx": (png(), "picture"),
    "report.pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    "old.doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500, ".doc"),
    "holiday.docx": (zipped({"photos/readme.txt": b"just some photos"}), "zip file of something"),
    "cut-short.docx": (zipped({"word/document.xml": b"<w:document/>"})[:60], "damaged"),
    "garbage.docx": (
        zipped({"word/document.xml": b"<not xml", "[Content_Types].xml": b"<x/>"}),
        "could not be read as a Word document",
    ),
    "title-only.txt": (b"Just A Title\n", "nothing after its title"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_a_clear_error(cli: Cli, workspace: Path, tmp_path: Path, name: str) -> None:
    data, expected = BAD[name]
    source = write(tmp_path / name, data)
    before = sorted((workspace / "newsletters").iterdir())
    result = cli("import", source)
    assert result.exit_code == 1, result.output
    assert name in result.output
    assert expected in result.output
    assert "Nothing was written" in result.output
    no_traceback(result)
    assert sorted((workspace / "newsletters").iterdir()) == before


def test_missing_file_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("import", tmp_path / "no-such-briefing.docx")
    assert result.exit_code == 1
    assert "no-such-briefing.docx not found" in result.output
    no_traceback(result)


def test_windows_1252_text_is_a_warning_and_a_good_import(cli: Cli, workspace: Path) -> None:
    raw = (DATA / "cp1252.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the fixture really is Windows-1252
    out = workspace / "newsletters" / "cp1252.yaml"
    result = cli("import", DATA / "cp1252.txt", "-o", out)
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "Windows-1252" in result.output
    assert "cp1252.txt" in result.output
    issue = Workspace.open(workspace).load_issue(out)
    text = norm(text_part(workspace, issue))
    title, *units = seed_units(raw.decode("cp1252"))
    assert title == "Staff Briefing – 4 April 2025"  # the title is the words before the date
    assert (issue.title, issue.date.isoformat()) == ("Staff Briefing", "2025-04-04")
    assert [u for u in units if norm(u) not in text] == []
    assert "The café at the Civic Centre" in text and "“Meet the Director”" in text
    assert "Windows-1252" in out.read_text(encoding="utf-8")  # and flagged in the file
    assert [s.heading for s in issue.sections] == ["Wellbeing Week"]
    # A full name signed under the closing is the author now (flagged in the file).
    assert issue.author is not None
    assert (issue.author.name, issue.author.role) == ("Anne Lewis", None)
    assert norm(issue.sign_off or "") == "Kind regards, Anne Lewis"


def test_utf16_and_a_renamed_text_file_are_read(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    seed = (SEEDS / BLOG_SEED).read_text(encoding="utf-8")
    utf16 = write(tmp_path / "blog.txt", seed.encode("utf-16"))
    assert read_briefing(utf16).title == "Steve Kay's Blogpost"
    renamed = write(tmp_path / "blog.docx", seed.encode("utf-8"))
    result = cli("import", renamed, "-o", workspace / "newsletters" / "x.yaml")
    assert result.exit_code == 0, result.output
    assert "not a Word document" in result.output


# -- any text at all comes out as written ------------------------------------------------------

# Characters Markdown, YAML and templates care about, and pieces that make links and lists.
PIECES = [*"abcXYZ019 éß\u00a0*_`[]()<>#&!\\-+.=~|:;'\"“”‘’–—…%@/$^,?\n"]
PIECES += ["http://a.org/x_y", "mailto:", " a@b.org ", "&amp;", " 1. ", "---", " <x:y> "]
PROSE = st.lists(st.sampled_from(PIECES), min_size=1, max_size=30).map("".join)


def is_paragraph(text: str) -> bool:
    """Text that is a paragraph whatever the importer decides (not a list, quote or template)."""
    first = text.strip()
    return bool(first) and not re.match(r"(\d{1,2}[.)]\s|[-*+–—•o]\s|>)", first)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    paragraphs=st.lists(
        PROSE.map(lambda t: re.sub(r"\s*\n\s*", " ", t)).filter(is_paragraph),
        min_size=1,
        max_size=4,
    )
)
def test_any_paragraph_loads_and_reads_as_written(
    paragraphs: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    source = folder / "fuzz.txt"
    source.write_text(
        "Fuzz Briefing - 1 May 2025\n\nDear all,\n\nAn introduction to it all.\n\n"
        "Section One\n\n" + "\n\n".join(paragraphs) + "\n",
        encoding="utf-8",
    )
    out = folder / "fuzz.yaml"
    write_draft(read_briefing(source), out)
    issue = SHIPPED.load_issue(out)  # raises if the loader finds any error
    variant = SHIPPED.renderer.variant(issue, frozenset())
    text = norm(fill(split(variant.text, "text"), None))
    assert [p for p in paragraphs if norm(p) not in text] == []
