"""How a setting of newsletter.toml is declared: once, with all there is to say about it.

A setting is a field of a config dataclass whose default is ``setting(...)``
(as mkdocs declares ``config_options.Type(str, default=...)``): its [section]
and key, the kind of value it takes, its default, a one-line description and
an example. The kind knows the TOML type, checks a value and turns it into the
attribute's value. Reading newsletter.toml, checking it and the settings
reference all come from these declarations, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from .problems import Problems, did_you_mean

T = TypeVar("T")

_OPTION = "newsletter.option"  # the key of a field's metadata that holds its Option

Value = str | int | float | bool  # what a setting holds in TOML


class Fault(NamedTuple):
    """What is wrong with a value, and how to put it right."""

    message: str
    hint: str | None = None


class Kind:
    """Text in quotes; subclasses take other values or check them further
    (hence arguments the defaults here do not use: noqa ARG002)."""

    type_name = "text"  # for the reference
    must_be = "text in quotes"  # "[section] key must be …" when the TOML type is wrong
    choices: tuple[str, ...] = ()

    def takes(self, value: object) -> bool:
        """Whether ``value`` has the TOML type this kind takes."""
        return isinstance(value, str)

    def check(self, where: str, value: Any) -> Fault | None:  # noqa: ARG002
        """What is wrong with a value of the right type (``where``: "[section] key")."""
        return None

    def convert(self, value: Any, base: Path) -> Any:  # noqa: ARG002
        """The attribute's value for a checked value (``base``: the workspace)."""
        return value

    def toml(self, value: Any) -> Value:
        """The attribute's value as it is written in newsletter.toml."""
        return cast(Value, value)


class Text(Kind):
    """Any text."""


class Number(Kind):
    """A number: ``int`` for whole numbers only, ``float`` for any (kept as float)."""

    must_be = "a number"

    def __init__(
        self,
        of: type[int] | type[float],
        *,
        at_least: float | None = None,
        at_most: float | None = None,
        above: float | None = None,
    ) -> None:
        self.of = of
        self.type_name = "whole number" if of is int else "number"
        self.at_least, self.at_most, self.above = at_least, at_most, above

    def takes(self, value: object) -> bool:
        kinds = (int,) if self.of is int else (int, float)
        return isinstance(value, kinds) and not isinstance(value, bool)

    @property
    def rule(self) -> str | None:
        """The range in words, or None when any number will do."""
        if self.at_least is not None and self.at_most is not None:
            return f"from {self.at_least:g} to {self.at_most:g}"
        if self.above is not None:
            return f"more than {self.above:g}"
        return None

    def check(self, where: str, value: Any) -> Fault | None:
        low_ok = self.at_least is None or value >= self.at_least
        high_ok = self.at_most is None or value <= self.at_most
        above_ok = self.above is None or value > self.above
        if low_ok and high_ok and above_ok:
            return None
        return Fault(f"{where} {value} is out of range", f"use a number {self.rule}")

    def convert(self, value: Any, base: Path) -> Any:  # noqa: ARG002
        return self.of(value)


class Flag(Kind):
    """true or false."""

    type_name = "true or false"
    must_be = "true or false (no quotes)"

    def takes(self, value: object) -> bool:
        return isinstance(value, bool)


class Choice(Kind):
    """One of a few words."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def check(self, where: str, value: Any) -> Fault | None:
        if value in self.choices:
            return None
        return Fault(
            f"{where} '{value}' is not one we know", f"use one of: {', '.join(self.choices)}"
        )


class Location(Kind):
    """A file or folder: relative paths stay relative (``Config.resolve`` places
    them), unless ``in_workspace``, when they are made absolute right away."""

    type_name = "path"

    def __init__(self, *, in_workspace: bool = False) -> None:
        self.in_workspace = in_workspace

    def convert(self, value: Any, base: Path) -> Any:
        return base / value if self.in_workspace else Path(value)

    def toml(self, value: Any) -> Value:
        return Path(value).as_posix()


@dataclass(frozen=True)
class Option:
    """One setting as declared. ``default`` and ``example`` are written as in
    newsletter.toml (``default`` None: not set unless the user sets it);
    ``attr`` is the attribute of the config object that holds it."""

    section: str
    key: str
    kind: Kind
    default: Value | None
    help: str
    example: Value
    attr: str = ""

    @property
    def type_name(self) -> str:
        return self.kind.type_name

    @property
    def choices(self) -> tuple[str, ...]:
        return self.kind.choices

    @property
    def where(self) -> str:
        return f"[{self.section}] {self.key}"


def setting(
    section: str,
    kind: Kind,
    default: T,
    *,
    help: str,
    example: Value,
    key: str | None = None,
) -> T:
    """A dataclass field declared as a setting; ``key`` if it is not the field's name.

    It is a ``dataclasses.field``, which ruff's RUF009 cannot tell when the
    field holds a type it does not know to be immutable (Path): hence the noqa."""
    option = Option(
        section, key or "", kind, None if default is None else kind.toml(default), help, example
    )
    return dataclasses.field(default=default, metadata={_OPTION: option})


def _fields(cls: type) -> Iterator[tuple[str, Option | None, type | None]]:
    """Each field of ``cls``: its name, its Option (key filled in) or the
    config dataclass it holds (a section of its own, such as [smtp])."""
    for f in dataclasses.fields(cast(Any, cls)):
        option: Option | None = f.metadata.get(_OPTION)
        nested = f.default_factory
        if option is not None:
            yield f.name, dataclasses.replace(option, key=option.key or f.name, attr=f.name), None
        elif isinstance(nested, type) and dataclasses.is_dataclass(nested):
            yield f.name, None, nested
        else:
            yield f.name, None, None


def declared(cls: type) -> Iterator[Option]:
    """The settings of config dataclass ``cls``, in the order of its fields."""
    for _, option, nested in _fields(cls):
        if option is not None:
            yield option
        elif nested is not None:
            yield from declared(nested)


def read(
    data: Mapping[str, Any], path: Path, problems: Problems, options: Iterable[Option]
) -> dict[tuple[str, str], Any]:
    """The values of parsed TOML by (section, key), each checked; what is wrong
    (unknown names, wrong types, bad values) goes to ``problems``."""
    schema: dict[str, dict[str, Option]] = {}
    for declared_option in options:
        schema.setdefault(declared_option.section, {})[declared_option.key] = declared_option
    given: dict[tuple[str, str], Any] = {}
    for section, body in data.items():
        if not isinstance(body, dict):
            # "host = …" above every [section] line: say where it belongs.
            homes = [name for name, keys in schema.items() if section in keys]
            problems.error(
                path,
                None,
                None,
                f"the setting '{section}' is not under any [section]",
                f"move it below the [{homes[0]}] line"
                if homes
                else f"settings belong under a section: {', '.join(f'[{s}]' for s in schema)}",
            )
            continue
        if section not in schema:
            problems.error(
                path,
                None,
                None,
                f"unknown section [{section}]",
                did_you_mean(section, schema) or f"sections are: {', '.join(schema)}",
            )
            continue
        for key, value in body.items():
            option = schema[section].get(key)
            if option is None:
                problems.error(
                    path,
                    None,
                    None,
                    f"unknown setting '{key}' in [{section}]",
                    did_you_mean(key, schema[section])
                    or f"settings there are: {', '.join(schema[section])}",
                )
            elif not option.kind.takes(value):
                problems.error(path, None, None, f"{option.where} must be {option.kind.must_be}")
            elif fault := option.kind.check(option.where, value):
                problems.error(path, None, None, fault.message, fault.hint)
            else:
                given[section, key] = value
    return given


def build(cls: type[T], given: Mapping[tuple[str, str], Any], base: Path, **fixed: Any) -> T:
    """An instance of config dataclass ``cls`` from checked values (see ``read``);
    settings not given keep their defaults; ``fixed``: fields that are not settings."""
    values = dict(fixed)
    for name, option, nested in _fields(cls):
        if option is not None and (option.section, option.key) in given:
            values[name] = option.kind.convert(given[option.section, option.key], base)
        elif nested is not None:
            values[name] = build(nested, given, base)
    return cls(**values)
