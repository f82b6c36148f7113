"""What a send keeps per person is small and shared (issue 16: flat memory at 100,000
people), and ``Recipient`` still works as every caller uses it.

No sizes are measured here (``benchmarks/bench_memory.py`` does that, by hand):
these tests hold the structure the small size comes from, on real lists on disk."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from sender.lists import read_list, select
from sender.recipient import Fields, Recipient, address_key, display_name


def write_lists(root: Path) -> Path:
    recipients = root / "recipients"
    recipients.mkdir()
    (recipients / "staff.csv").write_text(
        "email,first_name,last_name,team\n"
        "ann@example.org,Ann,Lee,Team 3\n"
        "bo@example.org,Bo,Ray,Team 3\n"
        "cy@example.org,Cy,,Team 4\n",
        encoding="utf-8",
    )
    (recipients / "heads.csv").write_text(
        "email,first_name,school\n"
        "ann@example.org,Ann,Hill Primary\n"  # Ann is on both lists
        "dee@example.org,Dee,Vale High\n",
        encoding="utf-8",
    )
    (recipients / "office.csv").write_text(
        "email,first_name,last_name,team\nbo@example.org,Bo,Ray,Team 3\n", encoding="utf-8"
    )
    return recipients


def test_a_recipient_keeps_no_dict_and_cannot_be_changed() -> None:
    r = Recipient("ann@example.org", "Ann Lee", {"email": "ann@example.org"}, ("staff",))
    assert not hasattr(r, "__dict__")
    with pytest.raises(FrozenInstanceError):
        r.name = "Someone else"  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.fields["email"] = "x@example.org"  # type: ignore[index]


def test_a_recipient_is_made_replaced_compared_and_copied_as_before() -> None:
    fields = {"email": "ann@example.org", "first_name": "Ann", "team": "Team 3"}
    r = Recipient(
        email="ann@example.org",
        name="Ann Lee",
        fields=fields,
        lists=["staff", "heads"],  # any iterable, kept as a tuple
        rows=[("recipients/staff.csv", 2)],
    )
    assert (r.lists, r.rows, r.audiences) == (
        ("staff", "heads"),
        (("recipients/staff.csv", 2),),
        frozenset({"staff", "heads"}),
    )
    assert dict(r.fields) == fields and r.fields == fields
    assert list(r.fields) == ["email", "first_name", "team"]  # in column order
    assert (r.fields.get("team"), r.fields.get("nope"), r.fields.get("nope", "-")) == (
        "Team 3",
        None,
        "-",
    )
    assert "team" in r.fields and "nope" not in r.fields and len(r.fields) == 3
    # As send/session.py and send/plan.py do: a new person with one thing changed.
    token = replace(r, fields={**r.fields, "unsubscribe_token": "abc"})
    assert token.fields["unsubscribe_token"] == "abc" and token.rows == r.rows
    assert replace(r, lists=("staff",)).audiences == frozenset({"staff"})
    same = Recipient("ann@example.org", "Ann Lee", dict(fields), ("staff", "heads"), r.rows)
    assert same == r and same != token
    assert pickle.loads(pickle.dumps(r)) == r
    assert copy.deepcopy(r) == r
    assert repr(r).startswith("Recipient(email='ann@example.org', name='Ann Lee', fields={")


def test_people_read_from_one_list_share_its_names_lists_and_repeated_values(
    tmp_path: Path,
) -> None:
    write_lists(tmp_path)
    ann, bo, cy = read_list(tmp_path / "recipients" / "staff.csv", tmp_path).recipients
    assert ann.lists is bo.lists is cy.lists
    assert ann.audiences is bo.audiences
    assert isinstance(ann.fields, Fields) and isinstance(bo.fields, Fields)
    assert ann.fields._at is bo.fields._at  # one dict of column names for the whole list
    assert ann.fields["team"] is bo.fields["team"]  # 'Team 3' kept once
    assert ann.email is ann.fields["email"]  # the normalised address, once
    assert (ann.name, cy.name) == ("Ann Lee", "Cy")


def test_a_person_on_several_lists_shares_what_did_not_change(tmp_path: Path) -> None:
    recipients = write_lists(tmp_path)
    selection = select(recipients, tmp_path, ["staff", "heads", "office"])
    by_email = {r.email: r for r in selection.recipients}
    staff = {r.email: r for r in selection.reports["staff"].recipients}
    # Bo: staff and office agree on every field: the merged person shares staff's.
    assert by_email["bo@example.org"].lists == ("staff", "office")
    assert by_email["bo@example.org"].fields is staff["bo@example.org"].fields
    # Ann: heads adds a school: her fields are new, her values still the same strings.
    ann = by_email["ann@example.org"]
    assert ann.lists == ("staff", "heads")
    assert dict(ann.fields) == {
        "email": "ann@example.org",
        "first_name": "Ann",
        "last_name": "Lee",
        "team": "Team 3",
        "school": "Hill Primary",
    }
    assert ann.fields["team"] is staff["ann@example.org"].fields["team"]
    assert ann.name == display_name(ann.fields) == "Ann Lee"
    assert ann.rows == (("recipients/staff.csv", 2), ("recipients/heads.csv", 2))


def test_an_address_already_case_folded_is_its_own_key() -> None:
    address = "ann.lee@example.org"
    assert address_key(address) is address
    assert address_key("Ann.Lee@Example.org") == address
