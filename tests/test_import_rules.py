"""Each rule of docs/import.md on its own: headings, signatures, dates, and what an
email adds around a briefing. Briefings are written to real files and imported."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, Cli

from sender.importer import read_briefing
from sender.importer.dates import _day_month
from sender.importer.markdown import _md_text
from sender.importer.model import Block
from sender.importer.sections import (
    _answered,
    _capitals_line,
    _question_line,
    _sentence_case,
    _sentence_case_line,
)

LONG = "This paragraph has well over twelve words in it, so it reads as the text under a heading."


def para(text: str) -> Block:
    return Block("para", plain=text, md=text, lines=[text])


def briefing(tmp_path: Path, text: str, name: str = "b.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- headings --------------------------------------------------------------------------------


def test_a_question_is_a_heading_only_when_answered() -> None:
    body = [para("Why does it matter?"), para(LONG)]
    assert _question_line(body, 0)
    assert not _question_line([para("Why does it matter?"), para("It does.")], 0)
    assert not _question_line([para("Why does it matter?")], 0)


def test_capitals_are_a_heading_and_become_sentence_case() -> None:
    assert _capitals_line([para("KEY DATES"), para(LONG)], 0)
    assert not _capitals_line([para("PE"), para(LONG)], 0)  # too few letters to be sure
    assert _sentence_case("KEY DATES FOR SEND REVIEWS") == "Key dates for SEND reviews"
    assert _sentence_case("OFSTED AND THE DFE") == "Ofsted and the DfE"


def test_sentence_case_needs_paragraphs_around_it() -> None:
    assert _sentence_case_line([para(LONG), para("Winter wellbeing"), para(LONG)], 1)
    assert _sentence_case_line([para("Winter wellbeing"), para(LONG)], 0)
    # After a short line, or before one, or ending as a sentence: not a heading.
    assert not _sentence_case_line([para("See you there"), para("Winter wellbeing"), para(LONG)], 1)
    assert not _sentence_case_line([para(LONG), para("Winter wellbeing"), para("Short.")], 1)
    assert not _sentence_case_line([para(LONG), para("All welcome."), para(LONG)], 1)
    assert not _sentence_case_line(
        [para(LONG), para("one two three four five six seven eight nine"), para(LONG)], 1
    )


def test_what_follows_supports_a_heading() -> None:
    assert _answered([para("Dates"), Block("table", rows=[["a", "b"]])], 0)
    assert _answered([para("Dates"), Block("list")], 0)
    assert not _answered([para("Dates"), para("Two words")], 0)


@pytest.mark.parametrize("mark", ["1.", "1)", "1 -", "1 –"])
def test_numbered_headings_in_every_form(tmp_path: Path, mark: str) -> None:
    two = mark.replace("1", "2")
    draft = read_briefing(
        briefing(
            tmp_path,
            f"Update – 3 March 2025\n\nDear all,\n\n{LONG}\n\n{mark} Adoption\n\n{LONG}\n\n"
            f"{two} Fostering\n\n{LONG}\n",
        )
    )
    assert [s.heading for s in draft.sections] == ["Adoption", "Fostering"]
    assert draft.numbered


def test_a_short_closing_line_between_paragraphs_is_not_a_heading(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(
            tmp_path,
            f"Update – 3 March 2025\n\nDear all,\n\n{LONG}\n\nSee you there\n\n{LONG}\n",
        )
    )
    assert [s.heading for s in draft.sections] == ["Update"]  # one section, no headings


# -- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "closing",
    [
        "Best wishes,",
        "Kind regards,",
        "Many thanks,",
        "Warm regards,",
        "Yours sincerely,",
        "Thank you all for your hard work this term,",
        "With best wishes,",
    ],
)
def test_name_and_role_after_any_closing(tmp_path: Path, closing: str) -> None:
    draft = read_briefing(
        briefing(
            tmp_path,
            f"Update – 3 March 2025\n\nDear all,\n\n{LONG}\n\n{closing}\n\nJane Smith\n"
            "Head of Inclusion\nRiverside City Council\nT: 0121 496 0000\n"
            "jane.smith@example.org\n",
        )
    )
    assert (draft.author_name, draft.author_role) == ("Jane Smith", "Head of Inclusion")
    assert draft.sign_off is not None and "0121" not in draft.sign_off
    assert "example.org" not in draft.sign_off and "Council" not in draft.sign_off
    assert draft.sections[0].body == LONG  # the closing is not left in the last section
    assert any("0121 496 0000" in x for x in draft.left_out)
    assert any("Riverside City Council" in x for x in draft.left_out)


def test_role_first_then_name(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(
            tmp_path,
            f"Update – 3 March 2025\n\nDear all,\n\n{LONG}\n\nBest wishes,\n\n"
            "Jane Smith, Head of Inclusion\n",
        )
    )
    assert (draft.author_name, draft.author_role) == ("Jane Smith", "Head of Inclusion")


def test_from_line_under_the_title(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(
            tmp_path,
            f"Update – 3 March 2025\n\nFrom Jane Smith, Head of Inclusion\n\nDear all,\n\n{LONG}\n",
        )
    )
    assert (draft.author_name, draft.author_role) == ("Jane Smith", "Head of Inclusion")


# -- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day_month"),
    [
        ("Briefing 3 October", (3, 10)),
        ("w/c 2 March", (2, 3)),
        ("Thursday 5th March", (5, 3)),
        ("October 3", (3, 10)),
        ("May we all meet", None),
        ("3 October 2025", None),  # a full date is read by the full-date rule
        ("31 February", None),
    ],
)
def test_day_and_month_without_a_year(text: str, day_month: tuple[int, int] | None) -> None:
    found = _day_month(text)
    assert (found[0] if found else None) == day_month


def test_the_year_is_inferred_from_the_text_and_flagged(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(tmp_path, f"Briefing – 3 October\n\nDear all,\n\nIn 2024 we grew. {LONG}\n")
    )
    assert draft.date == dt.date(2024, 10, 3)
    assert any("not the year" in n for n in draft.notes["date"])
    assert draft.title == "Briefing"


def test_the_year_nearest_the_email_date(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(
            tmp_path,
            "From: Jane Smith <jane@example.org>\nSent: Monday, 29 December 2025 10:00\n"
            f"To: Comms\nSubject: Briefing 5 January\n\nDear all,\n\n{LONG}\n",
        )
    )
    assert draft.date == dt.date(2026, 1, 5)  # the coming January, not the past one


def test_a_term_is_flagged(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(tmp_path, f"Newsletter – Summer Term 2026\n\nDear all,\n\n{LONG}\n")
    )
    assert draft.date == dt.date(2026, 4, 1)
    assert any("term" in n for n in draft.notes["date"])


# -- what an email adds ----------------------------------------------------------------------


def test_outlook_links_become_markdown_links() -> None:
    assert (
        _md_text("Read the policy<https://x.org/p> now.")
        == "[Read the policy](https://x.org/p) now."
    )
    assert _md_text("Mail jane@x.org<mailto:jane@x.org>.") == "Mail <jane@x.org>."
    assert _md_text("See https://x.org/a<https://x.org/a>") == "See <https://x.org/a>"


def test_written_emphasis_stays_emphasis_and_lone_stars_stay_stars() -> None:
    assert _md_text("a *new* form") == "a *new* form"
    assert _md_text("terms apply*") == "terms apply\\*"
    assert _md_text("5 * 3") == "5 \\* 3"


def test_gmail_forward_with_note_and_quoted_reply(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(
            tmp_path,
            "Hi Sam, please use this.\n\nThanks, Pat\n\n"
            "---------- Forwarded message ---------\nFrom: Jane Smith <jane@example.org>\n"
            "Date: Mon, 3 Mar 2025 at 09:12\nSubject: Fwd: Inclusion update\nTo: Pat\n\n"
            f"Dear all,\n\n{LONG}\n\nOn Fri, 28 Feb 2025 at 17:03, Pat <pat@example.org>\nwrote:\n"
            "> Jane, can you send it?\n",
        )
    )
    assert draft.title == "Inclusion update"
    assert draft.date == dt.date(2025, 3, 3)
    assert draft.author_name == "Jane Smith"
    kept = " ".join(s.body for s in draft.sections)
    assert "Sam" not in kept and "can you send" not in kept and LONG in kept
    assert len(draft.left_out) == 4  # the note, the forwarding line, the header, the quote


def test_footers_phones_and_placeholders_are_left_out(tmp_path: Path) -> None:
    draft = read_briefing(
        briefing(
            tmp_path,
            f"Update – 3 March 2025\n\nDear all,\n\n[cid:image001.png@01D]\n\n{LONG}\n\n"
            "Sent from my iPhone\n\nThis message has been scanned for viruses by Mimecast.\n\n"
            "The information in this email is confidential and may be legally privileged.\n",
        )
    )
    text = draft.sections[0].body
    assert text == LONG
    assert len(draft.left_out) == 4


def test_wrapped_lines_are_joined(tmp_path: Path) -> None:
    wrapped = (
        "The plan sets out how we will support pupils with special educational needs\n"
        "in mainstream classrooms. Each school will have a named adviser from the\n"
        "Inclusion Team by the end of March."
    )
    draft = read_briefing(briefing(tmp_path, f"Update – 3 March 2025\n\nDear all,\n\n{wrapped}\n"))
    assert draft.sections[0].body == " ".join(wrapped.split("\n"))


# -- .msg and .eml: clear lines, nothing written --------------------------------------------


def test_a_msg_without_extract_msg_says_how_to_install_it() -> None:
    """Run in a child Python where extract_msg cannot be imported (a real import failure,
    not a mock): one clear line naming the extra."""
    code = (
        "import sys; sys.modules['extract_msg'] = None\n"
        "from pathlib import Path\n"
        "from sender.importer import read_briefing, BriefingError\n"
        "try:\n"
        f"    read_briefing(Path({str(REPO / 'tests/data/import/corpus/outlook.msg')!r}))\n"
        "except BriefingError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "Outlook message (.msg)" in out.stdout and "pip install -e '.[msg]'" in out.stdout
    assert out.stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        (
            "broken.msg",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
            + "__substg1.0_".encode("utf-16-le")
            + b"\x00" * 100,
            "could not be read as an Outlook message",
        ),
        ("empty.eml", b"From: a@example.org\nSubject: x\nContent-Type: image/png\n\nxx", "no text"),
    ],
)
def test_a_bad_email_file_is_one_clear_line(
    cli: Cli, workspace: Path, tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    source = tmp_path / name
    source.write_bytes(data)
    before = sorted((workspace / "newsletters").iterdir())
    result = cli("import", source)
    assert result.exit_code == 1
    assert (
        said in result.output and name in result.output and "Nothing was written" in result.output
    )
    assert "Traceback" not in result.output
    assert sorted((workspace / "newsletters").iterdir()) == before
