#!/usr/bin/env bash
# The ROS-free unit tests (test/unit, -m "not ros") a second time, in .venv-stock: the OpenCV 4.6 +
# numpy 1.26 (+ ...) of a stock Ubuntu 24.04 + Jazzy robot, against the source tree. Tests that
# need something that environment lacks (rclpy, generated messages, test-only extras) are skipped
# with the module named (devtools/pytest_stock.py); a missing API fails. Extra args go to pytest.
set -eo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup_stock.sh"
cd "$root"
targets=(test/unit)
for arg in "$@"; do
  case "$arg" in test/*) targets=() ;; esac
done
# Nothing of the main environment: no ROS paths, no bootstrap marker, only the source tree.
exec env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH -u LD_LIBRARY_PATH -u VIRTUAL_ENV \
  -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u FASTDDS_DEFAULT_PROFILES_FILE -u RMW_IMPLEMENTATION \
  PYTHONPATH="$root" PYTHONSAFEPATH=1 \
  SEG_PERCEPTION_MEDIAPIPE_DIR="${SEG_PERCEPTION_MEDIAPIPE_DIR:-$root/build/mediapipe_selfie}" \
  "$root/.venv-stock/bin/pytest" --import-mode=importlib -p no:cacheprovider -p devtools.pytest_stock \
  -q -rs -m "not ros" "$@" "${targets[@]}"
