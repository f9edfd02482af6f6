"""The one reading of properties: flags, numbers and choices, checked against their specs."""

from __future__ import annotations

import pytest

from provisor.connectors.properties import Properties
from provisor.connectors.types import Kind, PropertySpec, connector_type
from provisor.errors import InputError

SPECS = (
    PropertySpec("on", Kind.BOOLEAN, default="true"),
    PropertySpec("size", Kind.INTEGER, default="50", minimum=1, maximum=100),
    PropertySpec("mode", Kind.CHOICE, default="a", choices=("a", "b")),
)


def test_flags_read_true_and_false_and_fall_back_to_defaults() -> None:
    read = Properties({"x": " TRUE ", "y": "false", "z": "", "w": "yes"})
    assert read.flag("x") is True
    assert read.flag("y") is False
    assert read.flag("z") is False and read.flag("z", True) is True
    assert read.flag("absent", True) is True
    assert read.flag("w") is False  # no spec: lenient, as connectors always read it
    assert Properties({}, SPECS).flag("on") is True  # the spec's default


def test_a_flag_its_spec_refuses_is_an_input_error_naming_it() -> None:
    with pytest.raises(InputError, match="on: expected true or false"):
        Properties({"on": "yes"}, SPECS).flag("on")


def test_numbers() -> None:
    read = Properties({"n": " 7 ", "bad": "x", "empty": ""})
    assert read.number("n") == 7
    assert read.number("bad") is None and read.number("bad", 3) == 3
    assert read.number("empty", 4) == 4
    assert read.bounded("n", 2, most=5) == 5
    assert read.bounded("bad", 2, most=5) == 2
    assert Properties({}, SPECS).number("size") == 50
    with pytest.raises(InputError, match="size: at most 100"):
        Properties({"size": "101"}, SPECS).number("size")
    with pytest.raises(InputError, match="size: expected a whole number"):
        Properties({"size": "many"}, SPECS).number("size")


def test_choices_and_texts() -> None:
    assert Properties({}, SPECS).choice("mode") == "a"
    assert Properties({"mode": "b"}, SPECS).text("mode") == "b"
    with pytest.raises(InputError, match="mode: one of a, b"):
        Properties({"mode": "c"}, SPECS).choice("mode")


def test_a_connector_type_reads_its_properties_with_its_specs() -> None:
    scim = connector_type("scim")
    read = scim.read({"URL": "https://example.org/scim"})
    assert read.text("URL") == "https://example.org/scim"
    assert dict(read)["URL"] == "https://example.org/scim"
