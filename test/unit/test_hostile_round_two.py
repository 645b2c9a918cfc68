"""Hostile input, round two (issue 20), to the ROS-free core: YAML alias bombs, error texts that
quote megabytes, TIFF headers that lie, calibrations with a million coefficients, model outputs
that are not finite or name classes the model does not have."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from seg_perception.model.base import ModelLoadError
from seg_perception.model.description import load_description
from seg_perception.wire.errors import ERROR_TEXT_LIMIT, bounded, first_line


def _alias_bomb(levels: int = 6) -> str:
    """A few hundred bytes whose value, aliases expanded, holds 10**(levels+1) strings."""
    expr = '&a0 ["xxxxxxxx", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'
    for i in range(1, levels + 1):
        expr = f"&a{i} [{expr}, " + ", ".join([f"*a{i - 1}"] * 9) + "]"
    return "input: {width: 8, height: 8}\nclasses: [" + expr + ", " + ", ".join([f"*a{levels}"] * 9) + "]\n"


def test_a_yaml_alias_bomb_is_refused_in_milliseconds_with_a_short_reason(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())
    assert path.stat().st_size < 500
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"aliases \(\*name\) are not allowed") as caught:
        load_description(path)
    assert time.perf_counter() - start < 0.5  # before: 3.5 s and a 59 MB error text
    assert len(str(caught.value)) < 2 * ERROR_TEXT_LIMIT


def test_anchors_without_aliases_and_plain_descriptions_still_load(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("input: &in {width: 8, height: 8}\nclasses: [a, b]\n")
    assert load_description(path).classes.names == ["a", "b"]


def test_a_huge_description_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("input: {width: 8, height: 8}\nclasses: [a, b]\n" + "#" * 2_000_000 + "\n")
    with pytest.raises(ModelLoadError, match="more than a description needs"):
        load_description(path)


def test_a_problem_quoting_megabytes_is_cut_to_one_bounded_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("input: {width: 8, height: 8}\nname: [" + ", ".join(["x" * 50] * 10_000) + "]\nclasses: [a]\n")
    with pytest.raises(ModelLoadError) as caught:
        load_description(path)
    text = str(caught.value)
    assert "description key 'name' must be a non-empty string" in text
    assert len(text) < 2 * ERROR_TEXT_LIMIT and "\n" not in text and "chars)" in text


def test_bounded_and_first_line() -> None:
    assert bounded("short\n  text") == "short text"
    long = "word " * 1_000_000
    cut = bounded(long)
    assert len(cut) < ERROR_TEXT_LIMIT + 40 and cut.endswith("(5000000 chars)")
    assert len(first_line(ValueError("y" * 1_000_000 + "\nmore"))) < ERROR_TEXT_LIMIT + 40
    assert first_line(ValueError()) == "ValueError"
