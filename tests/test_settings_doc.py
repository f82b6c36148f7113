"""docs/settings.md is written from the settings' declarations, and must say what they say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

from sender import settings_doc
from sender.config import options

DOC = REPO / "docs" / "settings.md"


def test_the_settings_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == settings_doc.reference(), (
        "docs/settings.md is out of date: run .venv/bin/python -m sender.settings_doc "
        "and commit the file"
    )


def test_every_setting_has_its_name_type_default_values_help_and_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = {m[1]: m.start() for m in re.finditer(r"^## \[(\w+)\]$", text, re.M)}
    for option in options():
        start = text.index(f"\n### {option.key}\n", sections[option.section])
        block = text[start : text.find("\n### ", start + 1)]
        assert f"- Type: {option.type_name}\n" in block, option.where
        assert "- Default: " in block and "- Example: `" + option.key + " = " in block
        assert " ".join(option.help.split()[:6]) in " ".join(block.split()), option.where
        for choice in option.choices:
            assert f'`"{choice}"`' in block, (option.where, choice)
    assert "## [lists.NAME]" in text and "## [[smtp]]" in text


def test_the_check_says_when_the_file_is_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text(DOC.read_text("utf-8").replace("### timeout", "### time_out"), "utf-8")
    monkeypatch.setattr(settings_doc, "REFERENCE", stale)
    assert settings_doc.main(["settings_doc", "--check"]) == 1
    assert "out of date: run python -m sender.settings_doc" in capsys.readouterr().err
    assert settings_doc.main(["settings_doc"]) == 0
    assert settings_doc.main(["settings_doc", "--check"]) == 0
    assert stale.read_text("utf-8") == DOC.read_text("utf-8")
