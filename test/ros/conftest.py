"""Fixtures shared by the node tests."""
from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def vision_msgs_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment in which vision_msgs (LabelInfo) imports: nothing to add where the real one is
    installed (a ROS install, or scripts/setup_upstream.sh); elsewhere a colcon-built stand-in
    from its definitions, built once per run."""
    if importlib.util.find_spec("vision_msgs") is not None:
        return {}
    from devtools.vision_msgs import build_vision_msgs

    return build_vision_msgs(tmp_path_factory.mktemp("vision_msgs_ws"))
