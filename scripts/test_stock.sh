#!/usr/bin/env bash
# The ROS-free unit tests under a stock Ubuntu 24.04 + Jazzy robot's versions (Python 3.12,
# OpenCV 4.6, numpy 1.26; requirements-stock.txt): scripts/test_rosfree.sh stock. Extra args go to pytest.
exec bash "$(dirname "$0")/test_rosfree.sh" stock "$@"
