"""newsletter.toml: found like git finds .git, every mistake named, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sender.cli import cli
from sender.config import (
    CONFIG_NAME,
    Config,
    WorkspaceNotFound,
    find_workspace,
    load_config,
)
from sender.problems import Problem, ProblemsError

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


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
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace / "newsletters")
    result = run("check", "2025-02-13-steve-kay-blog.yaml")
    assert_clean_exit(result, 0)
    assert f"{BLOG}: ok" in result.output


def test_workspace_option(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for option in ("--workspace", "-w"):
        result = run(option, str(workspace), "check", str(workspace / BLOG))
        assert_clean_exit(result, 0)
        assert f"{BLOG}: ok" in result.output


def test_no_config_here_or_above_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("check", "issue.yaml")
    assert_clean_exit(result, 2)
    assert "Usage:" in result.output
    assert shown(result, f"Error: No newsletter.toml found in {tmp_path.resolve()} ")
    assert "pass --workspace DIR" in flat(result.output)


def test_workspace_option_without_config_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-newsletter"
    empty.mkdir()
    result = run("--workspace", str(empty), "check", str(empty / "issue.yaml"))
    assert_clean_exit(result, 2)
    assert "Usage:" in result.output
    assert shown(result, f"Error: No newsletter.toml in {empty}: it is not a newsletter folder.")
    assert "Pass --workspace the folder that holds newsletter.toml." in flat(result.output)
    with pytest.raises(WorkspaceNotFound):
        load_config(empty)


def test_workspace_option_that_does_not_exist(tmp_path: Path) -> None:
    result = run("--workspace", str(tmp_path / "nowhere"), "check", "issue.yaml")
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


def test_premailer_inliner_loads(workspace: Path) -> None:
    edit_config(workspace, 'inliner = "css-inline"', 'inliner = "premailer"')
    assert load_config(workspace).inliner == "premailer"
    result = run("--workspace", str(workspace), "check", str(workspace / BLOG))
    assert_clean_exit(result, 0)
    assert f"{BLOG}: ok" in result.output


def test_unknown_setting_did_you_mean(workspace: Path) -> None:
    path = edit_config(workspace, 'from = "', 'form = "')
    [problem] = config_problems(workspace)
    assert problem.file == str(path)
    assert problem.message == "unknown setting 'form' in [newsletter]"
    assert problem.hint == "did you mean 'from'?"

    result = run("--workspace", str(workspace), "check", str(workspace / BLOG))
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}: error: unknown setting 'form' in [newsletter]")
    assert shown(result, "hint: did you mean 'from'?")
    assert shown(result, "newsletter.toml has errors")


def test_unknown_section_did_you_mean(workspace: Path) -> None:
    edit_config(workspace, "\n[smtp]\n", "\n[smpt]\n")
    [problem] = config_problems(workspace)
    assert problem.message == "unknown section [smpt]"
    assert problem.hint == "did you mean 'smtp'?"


def test_bad_transport(workspace: Path) -> None:
    path = edit_config(workspace, 'transport = "eml"', 'transport = "email"')
    [problem] = config_problems(workspace)
    assert problem.message == "[send] transport 'email' is not one we know"
    assert problem.hint == "use one of: eml, smtp"
    result = run("--workspace", str(workspace), "check", str(workspace / BLOG))
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}: error: [send] transport 'email' is not one we know")


@pytest.mark.parametrize("port", ['"587"', '"five eight seven"', "true", "587.5"])
def test_port_must_be_a_number(workspace: Path, port: str) -> None:
    path = edit_config(workspace, "port = 587", f"port = {port}")
    [problem] = config_problems(workspace)
    assert problem.message == "[smtp] port must be a number"
    result = run("--workspace", str(workspace), "check", str(workspace / BLOG))
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


def test_invalid_toml_names_file_and_line(workspace: Path) -> None:
    path = edit_config(workspace, "[send]\n", "[send\n")
    line = path.read_text(encoding="utf-8").splitlines().index("[send") + 1
    [problem] = config_problems(workspace)
    assert problem.file == str(path)
    assert problem.line == line
    assert problem.col == 6
    assert problem.message.startswith("is not valid TOML: ")
    assert "(at line" not in problem.message

    result = run("--workspace", str(workspace), "check", str(workspace / BLOG))
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}:{line}:6: error: is not valid TOML: Expected ']'")
    assert shown(result, "newsletter.toml has errors")


def test_config_not_utf8(workspace: Path) -> None:
    path = workspace / CONFIG_NAME
    path.write_bytes(path.read_bytes().replace(b"Children's", b"Caf\xe9 Children's"))
    [problem] = config_problems(workspace)
    assert problem.message == "is not UTF-8 text"
    result = run("--workspace", str(workspace), "check", str(workspace / BLOG))
    assert_clean_exit(result, 1)
    assert shown(result, f"{path}: error: is not UTF-8 text")


def test_a_setting_outside_any_section_says_where_it_belongs(tmp_path: Path) -> None:
    (tmp_path / "newsletter.toml").write_text('host = "mail.example.org"\n', encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_config(tmp_path)
    [problem] = caught.value.problems
    assert problem.message == "the setting 'host' is not under any [section]"
    assert problem.hint == "move it below the [smtp] line"
