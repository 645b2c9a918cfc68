#!/usr/bin/env bash
# The ROS-free unit tests (test/unit, -m "not ros") again in a ROS-free environment of stock robot
# versions, against the source tree: `test_rosfree.sh stock` (Ubuntu 24.04 + Jazzy: Python 3.12,
# OpenCV 4.6, numpy 1.26) or `test_rosfree.sh humble` (Ubuntu 22.04 + Humble: Python 3.10, OpenCV
# 4.5.4, numpy 1.21). Tests that need something that environment lacks (rclpy, generated
# messages, torch where no wheel exists, test-only extras) are skipped with the module named
# (devtools/pytest_stock.py); a missing API fails. Extra args go to pytest.
set -eo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: test_rosfree.sh stock|humble [pytest args]}
shift
bash "$root/scripts/setup_rosfree.sh" "$name"
cd "$root"
targets=(test/unit)
for arg in "$@"; do
  case "$arg" in test/*) targets=() ;; esac
done
# Nothing of the main environment: no ROS paths, no bootstrap marker, only the source tree.
exec env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH -u LD_LIBRARY_PATH -u VIRTUAL_ENV \
  -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u FASTDDS_DEFAULT_PROFILES_FILE -u FASTRTPS_DEFAULT_PROFILES_FILE -u RMW_IMPLEMENTATION \
  PYTHONPATH="$root" PYTHONSAFEPATH=1 SEG_PERCEPTION_ROSFREE_ENV="$name" \
  SEG_PERCEPTION_MEDIAPIPE_DIR="${SEG_PERCEPTION_MEDIAPIPE_DIR:-$root/build/mediapipe_selfie}" \
  "$root/.venv-$name/bin/pytest" --import-mode=importlib -p no:cacheprovider -p devtools.pytest_stock \
  -q -rs -m "not ros" "$@" "${targets[@]}"
