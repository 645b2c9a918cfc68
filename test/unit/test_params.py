"""live.params: the parameter table and its cross-field checks."""
from __future__ import annotations

from typing import Any

import pytest

from seg_perception.live import params

def _defaults() -> dict[str, Any]:
    return {p.name: p.default for p in params.PARAMS if not p.declared_unset}


def test_parameter_table_is_consistent() -> None:
    names = [p.name for p in params.PARAMS]
    assert len(names) == len(set(names))
    assert set(params.BY_NAME) == set(names)
    for p in params.PARAMS:
        assert p.description.strip(), p.name
        if p.choices:
            assert p.default in p.choices, p.name
        if p.min is not None:
            assert p.min <= p.default, p.name
        if p.max is not None:
            assert p.default <= p.max, p.name
        assert p.stage in params.STAGES, p.name
    assert params.BY_NAME["model"].stage == "configure"
    assert params.BY_NAME["autostart"].stage == "startup"
    assert params.BY_NAME["confidence_threshold"].stage == "live"


def test_configure_time_parameters_are_refused_only_while_configured() -> None:
    assert params.refused_while_configured(["model"], "unconfigured") is None
    assert params.refused_while_configured(["confidence_threshold"], "active") is None
    for state in ("inactive", "active"):
        reason = params.refused_while_configured(["model", "confidence_threshold", "device"], state)
        assert reason is not None and "model, device" in reason and state in reason
        assert "clean up" in reason


def test_defaults_are_valid() -> None:
    assert params.validate(_defaults()) is None
    assert params.validate(_defaults(), ["background", "person"]) is None


@pytest.mark.parametrize("values, fragment", [
    ({"input_transport": "zmq"}, "input_transport"),
    ({"image_reliability": "reliable", "output_reliability": "sometimes"}, "output_reliability"),
    ({"output_size": "big"}, "output_size"),
    ({"output_size": "0x480"}, "output_size"),
    ({"min_range": 5.0, "max_range": 5.0}, "min_range"),
    ({"min_range": 6.0, "max_range": 5.0}, "max_range"),
])
def test_validate_refuses(values: dict[str, Any], fragment: str) -> None:
    reason = params.validate(values)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize("values", [
    {"output_size": "network"},
    {"output_size": "1280x720"},
    {"min_range": 0.5, "max_range": 5.0},
    {"min_range": 50.0},            # alone: the node merges the current max_range before checking
    {"not_a_parameter": object()},  # names it does not know are left to rclpy
])
def test_validate_accepts(values: dict[str, Any]) -> None:
    assert params.validate(values) is None


def test_validate_obstacle_classes() -> None:
    names = ["background", "person", "car"]
    assert params.validate({"obstacle_classes": ["person", "car"]}, names) is None
    assert params.validate({"obstacle_classes": []}, names) is None
    reason = params.validate({"obstacle_classes": ["person", "tree"]}, names)
    assert reason is not None and "tree" in reason
    # Before a model is loaded the names are unknown: nothing to check against.
    assert params.validate({"obstacle_classes": ["tree"]}) is None


