"""sender.lists and `newsletter lists`: real CSV files on disk, exact reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from conftest import Cli

from sender.lists import (
    CP1252_WARNING,
    HEADER_HINT,
    ListReport,
    field_key,
    list_names,
    read_list,
    read_suppressed,
    select,
)
from sender.problems import ProblemsError
from sender.recipient import Recipient, display_name

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad_csv"

LINE_BREAK = (
    "the 'name' value has a line break in it; recipient data may not hold line breaks "
    "(they could inject mail headers)"
)

# file -> ((rows, valid, invalid, duplicates), ["line: severity: message", ...])
CORPUS: dict[str, tuple[tuple[int, int, int, int], list[str]]] = {
    "missing_email_column.csv": (
        (0, 0, 0, 0),
        ["1: error: no 'email' column (the columns are 'Emial', 'first_name')"],
    ),
    "no_header_row.csv": (
        (0, 0, 0, 0),
        [
            "1: error: the first row should name the columns, but it holds an address "
            "('zoe@example.org')"
        ],
    ),
    "bad_addresses.csv": (
        (8, 2, 6, 0),
        [
            "3: error: 'x@' is not a valid address: There must be something after the @-sign.",
            "4: error: 'sian@@example.org' is not a valid address: "
            "The part after the @-sign contains invalid characters: '@'.",
            "5: error: 'a..b@example.org' is not a valid address: "
            "An email address cannot have two periods in a row.",
            "6: error: 'Łukasz <lukasz@example.org>' is not a valid address: "
            "The display name contains invalid characters when not quoted: 'Ł'.",
            "7: error: no email address on this row",
            "8: error: 'chen@example.test' is not a valid address: The part after the @-sign "
            "is a special-use or reserved name that cannot be used with email.",
        ],
    ),
    "duplicates_case.csv": (
        (4, 2, 0, 2),
        [
            "4: warning: duplicate of line 2 (zoe.hartley@example.org)",
            "5: warning: duplicate of line 2 (ZOE.HARTLEY@example.org)",
        ],
    ),
    "bom.csv": ((2, 2, 0, 0), []),
    "cp1252.csv": ((3, 3, 0, 0), [f"3: warning: {CP1252_WARNING}"]),
    "windows_1252_undecodable.csv": (
        (2, 1, 1, 0),
        [
            f"2: warning: {CP1252_WARNING}",
            "3: error: this line has bytes that are neither UTF-8 nor Windows-1252; "
            "they are read as '\ufffd'",
        ],
    ),
    "utf16.csv": (
        (0, 0, 0, 0),
        ["1: error: file is UTF-16 text ('Unicode Text'), not CSV in UTF-8"],
    ),
    "mac_cr_line_ends.csv": ((3, 3, 0, 0), [f"3: warning: {CP1252_WARNING}"]),
    "semicolons.csv": ((2, 2, 0, 0), []),
    "injection.csv": ((2, 1, 1, 0), [f"2: error: {LINE_BREAK}"]),
    "unclosed_quote.csv": ((2, 1, 1, 0), [f"2: error: {LINE_BREAK}"]),
    "empty.csv": ((0, 0, 0, 0), ["1: error: file is empty"]),
    "header_only.csv": ((0, 0, 0, 0), ["1: error: there are no recipients below the header row"]),
    "quoted_commas.csv": ((2, 2, 0, 0), []),
    "extra_columns.csv": (
        (3, 2, 1, 0),
        ["3: error: this row has 4 values but the header names 3 columns"],
    ),
    "long_field.csv": (
        (2, 1, 1, 0),
        ["3: error: the 'notes' value is 1001 characters long; the limit is 1000"],
    ),
    "email_address_header.csv": ((2, 2, 0, 0), []),
    "two_email_columns.csv": (
        (0, 0, 0, 0),
        ["1: error: two columns hold email addresses: 'Email' and 'E-mail'"],
    ),
}


def read(name: str) -> ListReport:
    return read_list(BAD / name, DATA)


def people(report: ListReport | list[Recipient]) -> list[tuple[str, str, int]]:
    recipients = report.recipients if isinstance(report, ListReport) else report
    return [(r.email, r.name, r.rows[0][1]) for r in recipients]


# --------------------------------------------------------------------------- the corpus


def test_corpus_on_disk_is_exactly_the_table() -> None:
    assert sorted(p.name for p in BAD.glob("*.csv")) == sorted(CORPUS)
    assert len(CORPUS) >= 12


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_reports(name: str) -> None:
    (rows, valid, invalid, duplicates), expected = CORPUS[name]
    report = read(name)
    got = [f"{p.line}: {p.severity}: {p.message}" for p in report.problems]
    assert got == expected
    assert (report.rows, report.valid, report.invalid, report.duplicates) == (
        rows,
        valid,
        invalid,
        duplicates,
    )
    assert report.rows == report.valid + report.invalid + report.duplicates + report.suppressed
    assert {p.file for p in report.problems} <= {f"bad_csv/{name}"}
    assert all(p.col is None for p in report.problems)


def test_problem_renders_as_file_line_reason() -> None:
    problem = read("bad_addresses.csv").problems[0]
    assert str(problem) == (
        "bad_csv/bad_addresses.csv:3: error: "
        "'x@' is not a valid address: There must be something after the @-sign."
    )


def test_missing_email_column_hint_names_the_misspelt_column() -> None:
    (problem,) = read("missing_email_column.csv").problems
    assert problem.hint == f"rename the column 'Emial' to 'email': {HEADER_HINT}"


def test_empty_file_hint_says_what_the_first_row_must_be() -> None:
    (problem,) = read("empty.csv").problems
    assert problem.hint == HEADER_HINT


def test_display_name_in_address_column_gets_a_hint() -> None:
    hints = {p.line: p.hint for p in read("bad_addresses.csv").problems}
    assert hints[6] == "put only the address in the email column, e.g. zoe@example.org"
    assert hints[3] is None


def test_bad_addresses_keep_the_good_rows_around_them() -> None:
    assert people(read("bad_addresses.csv")) == [
        ("zoe@example.org", "Zoë", 2),
        ("lukasz@example.org", "Łukasz", 9),
    ]


def test_duplicates_differing_in_case_keep_the_first_spelling() -> None:
    report = read("duplicates_case.csv")
    assert people(report) == [
        ("Zoe.Hartley@example.org", "Zoë Hartley", 2),
        ("sian@example.org", "Siân Jones", 3),
    ]
    assert report.recipients[0].fields["email"] == "Zoe.Hartley@example.org"


def test_bom_is_not_part_of_the_first_column() -> None:
    report = read("bom.csv")
    assert report.columns == ["email", "first_name", "last_name"]
    assert people(report) == [
        ("zoe@example.org", "Zoë Hartley", 2),
        ("chen@example.org", "陈 Wei", 3),
    ]
    assert report.encoding == "utf-8"


def test_cp1252_is_decoded() -> None:
    report = read("cp1252.csv")
    assert report.encoding == "windows-1252"
    assert [r.fields["first_name"] for r in report.recipients] == ["Ann", "Zoë", "Siân"]


def test_cr_only_line_ends_count_as_lines() -> None:
    report = read("mac_cr_line_ends.csv")
    assert people(report) == [
        ("ann@example.org", "Ann", 2),
        ("zoe@example.org", "Zoë", 3),
        ("sian@example.org", "Siân", 4),
    ]


def test_undecodable_bytes_reject_the_row() -> None:
    assert people(read("windows_1252_undecodable.csv")) == [("zoe@example.org", "Zoë", 2)]


def test_semicolons_are_sniffed_and_commas_inside_values_kept() -> None:
    report = read("semicolons.csv")
    assert [dict(r.fields) for r in report.recipients] == [
        {"email": "zoe@example.org", "first_name": "Zoë", "school": "St Mary's, Riverside"},
        {"email": "lukasz@example.org", "first_name": "Łukasz", "school": "Oakfield"},
    ]


def test_quoted_commas_and_quotes() -> None:
    report = read("quoted_commas.csv")
    assert [(r.name, r.fields["school"]) for r in report.recipients] == [
        ("Hartley, Zoë", "St Mary's C of E, Riverside"),
        ('Ann "Nan" Lee', "Oakfield"),
    ]


def test_injection_row_is_dropped_and_its_span_named() -> None:
    report = read("injection.csv")
    assert people(report) == [("sian@example.org", "Sian", 4)]
    assert not any("Bcc" in v for r in report.recipients for v in r.fields.values())
    assert report.problems[0].hint == (
        "the row runs from line 2 to line 3: remove the line break from the cell, "
        "or add the missing closing quote"
    )


def test_unclosed_quote_swallows_rows_but_line_numbers_stay_physical() -> None:
    report = read("unclosed_quote.csv")
    assert people(report) == [("lukasz@example.org", "Łukasz", 5)]
    assert "from line 2 to line 4" in (report.problems[0].hint or "")


def test_extra_values_error_but_trailing_empty_cells_are_fine() -> None:
    report = read("extra_columns.csv")
    assert people(report) == [("zoe@example.org", "Zoë", 2), ("ann@example.org", "Ann", 4)]


def test_field_of_exactly_1000_characters_is_allowed() -> None:
    report = read("long_field.csv")
    assert [len(r.fields["notes"]) for r in report.recipients] == [1000]


def test_header_variant_spaces_and_blank_lines() -> None:
    report = read("email_address_header.csv")
    assert report.columns == ["email", "first_name", "surname"]
    assert people(report) == [
        ("zoe@example.org", "Zoë Hartley", 3),
        ("sian@example.org", "Siân Jones", 6),
    ]
    assert dict(report.recipients[0].fields) == {
        "email": "zoe@example.org",
        "first_name": "Zoë",
        "surname": "Hartley",
    }


# --------------------------------------------------------------------------- small pieces


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("First Name", "first_name"),
        (" School ", "school"),
        ("Job-title", "job_title"),
        ("Team", "team"),
    ],
)
def test_field_key(header: str, key: str) -> None:
    assert field_key(header) == key


def test_display_name() -> None:
    assert display_name({"name": "Zoë Hartley", "first_name": "Z"}) == "Zoë Hartley"
    assert display_name({"first_name": "Siân", "surname": "Jones"}) == "Siân Jones"
    assert display_name({"first_name": "Łukasz", "last_name": ""}) == "Łukasz"
    assert display_name({"email": "a@example.org"}) == ""


# --------------------------------------------------------------------------- workspaces


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "newsletter.toml").write_text('[newsletter]\nname = "Test"\n', encoding="utf-8")
    (tmp_path / "recipients").mkdir()
    return tmp_path


def test_list_names_are_sorted_and_exclude_suppressed(workspace: Path) -> None:
    rec = workspace / "recipients"
    for name in ("managers", "all-staff", "suppressed", "headteachers"):
        write(rec, f"{name}.csv", "email\na@example.org\n")
    write(rec, "notes.txt", "not a list")
    assert list_names(rec) == ["all-staff", "headteachers", "managers"]
    assert list_names(workspace / "nowhere") == []


def test_suppression_wins(workspace: Path) -> None:
    rec = workspace / "recipients"
    write(rec, "suppressed.csv", "email,reason\nSIAN@Example.org,unsubscribed 2025-01-20\n")
    write(
        rec,
        "staff.csv",
        "email,name\nzoe@example.org,Zoë\nsian@example.org,Siân\nSian@example.org,Siân\n",
    )
    keys, problems = read_suppressed(rec, workspace)
    assert keys == {"sian@example.org"}
    assert problems == []
    selection = select(rec, workspace, ["staff"])
    report = selection.reports["staff"]
    assert people(selection.recipients) == [("zoe@example.org", "Zoë", 2)]
    assert (report.rows, report.valid, report.suppressed, report.duplicates) == (3, 1, 2, 0)
    assert selection.suppressed == 1
    assert selection.problems == []


def test_suppressed_file_may_be_empty_or_header_only_but_not_bad(workspace: Path) -> None:
    rec = workspace / "recipients"
    write(rec, "suppressed.csv", "")
    assert read_suppressed(rec, workspace) == (set(), [])
    write(rec, "suppressed.csv", "email,reason\n")
    assert read_suppressed(rec, workspace) == (set(), [])
    write(rec, "suppressed.csv", "email\nx@\n")
    keys, problems = read_suppressed(rec, workspace)
    assert keys == set()
    assert [str(p).splitlines()[0] for p in problems] == [
        "recipients/suppressed.csv:2: error: "
        "'x@' is not a valid address: There must be something after the @-sign."
    ]
    assert read_suppressed(workspace / "nowhere", workspace) == (set(), [])


def test_several_lists_merge_into_one_recipient(workspace: Path) -> None:
    rec = workspace / "recipients"
    write(
        rec,
        "headteachers.csv",
        "email,first_name,name,school,phone\n"
        "zoe@example.org,Zoë,Zoë Hartley,Oakfield,\n"
        "chen@example.org,陈,陈伟,Kingfisher,0123\n",
    )
    write(
        rec,
        "managers.csv",
        "Email,First Name,Name,Team,Phone\n"
        "lukasz@example.org,Łukasz,Łukasz Zieliński,SEND,\n"
        "ZOE@example.org,Zoe,Zoe Hartley,Youth Service,0456\n",
    )
    selection = select(rec, workspace, ["headteachers", "managers", "headteachers"])
    assert selection.names == ["headteachers", "managers"]
    assert [(r.email, r.name, r.lists) for r in selection.recipients] == [
        ("zoe@example.org", "Zoë Hartley", ("headteachers", "managers")),
        ("chen@example.org", "陈伟", ("headteachers",)),
        ("lukasz@example.org", "Łukasz Zieliński", ("managers",)),
    ]
    zoe = selection.recipients[0]
    assert dict(zoe.fields) == {
        "email": "zoe@example.org",
        "first_name": "Zoë",
        "name": "Zoë Hartley",
        "school": "Oakfield",
        "phone": "0456",  # blank on the first list: filled, not a conflict
        "team": "Youth Service",
    }
    assert zoe.rows == (("recipients/headteachers.csv", 2), ("recipients/managers.csv", 3))
    assert selection.on_several == 1
    assert [str(c) for c in selection.conflicts] == [
        "zoe@example.org: first_name is 'Zoë' on headteachers and 'Zoe' on managers; using 'Zoë'",
        "zoe@example.org: name is 'Zoë Hartley' on headteachers and 'Zoe Hartley' on managers; "
        "using 'Zoë Hartley'",
    ]

    reverse = select(rec, workspace, ["managers", "headteachers"])
    zoe = next(r for r in reverse.recipients if r.email.lower() == "zoe@example.org")
    assert zoe.email == "ZOE@example.org"
    assert zoe.lists == ("managers", "headteachers")
    assert (zoe.name, zoe.fields["first_name"], zoe.fields["school"]) == (
        "Zoe Hartley",
        "Zoe",
        "Oakfield",
    )


def test_non_ascii_names_survive(workspace: Path) -> None:
    rec = workspace / "recipients"
    write(
        rec,
        "staff.csv",
        "email,first_name,last_name\n"
        "zoe@example.org,Zoë,Hartley\n"
        "lukasz@example.org,Łukasz,Zieliński\n"
        "chen@example.org,陈,伟\n",
    )
    recipients = select(rec, workspace, ["staff"]).recipients
    assert [(r.name, r.fields["first_name"]) for r in recipients] == [
        ("Zoë Hartley", "Zoë"),
        ("Łukasz Zieliński", "Łukasz"),
        ("陈 伟", "陈"),
    ]


def test_unknown_list_is_refused_with_did_you_mean(workspace: Path) -> None:
    rec = workspace / "recipients"
    write(rec, "headteachers.csv", "email\na@example.org\n")
    write(rec, "suppressed.csv", "email\n")
    with pytest.raises(ProblemsError) as caught:
        select(rec, workspace, ["headteacher", "suppressed"])
    assert [(p.file, p.message, p.hint) for p in caught.value.problems] == [
        (
            "recipients",
            "there is no list named 'headteacher' (no recipients/headteacher.csv)",
            "did you mean 'headteachers'?",
        ),
        (
            "recipients",
            "'suppressed' is not a list: anyone in suppressed.csv is never sent to",
            "the lists are: headteachers",
        ),
    ]


def test_many_rows(tmp_path: Path) -> None:
    lines = ["email,first_name"]
    lines += [f"person{i}@school{i % 7}.example.org,P{i}" for i in range(3000)]
    lines += ["PERSON5@school5.example.org,again"]
    path = write(tmp_path, "big.csv", "\n".join(lines) + "\n")
    report = read_list(path, tmp_path)
    assert (report.rows, report.valid, report.duplicates) == (3001, 3000, 1)
    assert [str(p) for p in report.problems] == [
        "big.csv:3002: warning: duplicate of line 7 (PERSON5@school5.example.org)"
    ]


# --------------------------------------------------------------------------- the CLI


def outcome(result: Result) -> tuple[int, str]:
    """The exit code and output of a run that raised no exception."""
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


def good_lists(workspace: Path) -> None:
    rec = workspace / "recipients"
    write(rec, "headteachers.csv", "email,first_name\nzoe@example.org,Zoë\nann@example.org,Ann\n")
    write(rec, "managers.csv", "email,first_name\nzoe@example.org,Zoe\nlukasz@example.org,Łukasz\n")
    write(rec, "suppressed.csv", "email\nann@example.org\n")


def test_cli_clean_lists_exit_0(cli: Cli, workspace: Path) -> None:
    good_lists(workspace)
    code, output = outcome(cli("lists"))
    assert code == 0, output
    assert "│ headteachers │    2 │     1 │       0 │          0 │          1 │" in output
    assert "│ managers     │    2 │     2 │       0 │          0 │          0 │" in output
    assert "1 address in recipients/suppressed.csv is never sent to." in output
    assert "On several lists: 1 person, each sent one message." in output
    assert "the value from the list named first wins (here headteachers, then managers" in output
    assert "zoe@example.org: first_name is 'Zoë' on headteachers and 'Zoe' on managers" in output
    assert "All rows are fine." in output


def test_cli_bad_rows_exit_1_with_file_line_reason(cli: Cli, workspace: Path) -> None:
    good_lists(workspace)
    write(
        workspace / "recipients",
        "staff.csv",
        'email,name\nzoe@example.org,Zoë\nx@,X\n"sian@example.org","Siân\nBcc: a@example.org"\n',
    )
    code, output = outcome(cli("lists"))
    assert code == 1, output
    assert "│ staff        │    3 │     1 │       2 │          0 │          0 │" in output
    assert (
        "recipients/staff.csv:3: error: 'x@' is not a valid address: "
        "There must be something after the @-sign." in output
    )
    assert f"recipients/staff.csv:4: error: {LINE_BREAK}" in output
    assert "2 problems must be fixed" in output


def test_cli_warnings_only_exit_0(cli: Cli, workspace: Path) -> None:
    write(workspace / "recipients", "staff.csv", "email\nzoe@example.org\nZoe@example.org\n")
    code, output = outcome(cli("lists"))
    assert code == 0, output
    assert "recipients/staff.csv:3: warning: duplicate of line 2 (Zoe@example.org)" in output
    assert "1 warning" in output


def test_cli_one_list_in_detail(cli: Cli, workspace: Path) -> None:
    good_lists(workspace)
    code, output = outcome(cli("lists", "--list", "managers"))
    assert code == 0, output
    assert "managers: recipients/managers.csv, utf-8; columns: email, first_name" in output
    assert "  Zoe <zoe@example.org>\n" in output
    assert "headteachers" not in output


def test_cli_unknown_list_is_a_usage_error(cli: Cli, workspace: Path) -> None:
    good_lists(workspace)
    code, output = outcome(cli("lists", "--list", "manager"))
    assert code == 2
    assert "there is no list named 'manager'" in output
    assert "did you mean 'managers'?" in output


def test_cli_no_lists_yet(cli: Cli) -> None:
    code, output = outcome(cli("lists"))
    assert code == 0
    assert "No lists yet." in output


def test_cli_help_has_an_example(cli: Cli) -> None:
    result = cli.at(None)("lists", "--help")
    assert result.exit_code == 0
    assert "newsletter lists --list headteachers --list managers" in result.output
    assert "--list NAME" in result.output
