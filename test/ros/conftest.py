"""Fixtures shared by the node tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def vision_msgs_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment with a colcon-built vision_msgs (LabelInfo) on the paths: built once per run."""
    from devtools.vision_msgs import build_vision_msgs

    return build_vision_msgs(tmp_path_factory.mktemp("vision_msgs_ws"))
