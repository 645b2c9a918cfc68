#!/usr/bin/env bash
# colcon build of this package into install/ against .venv (incremental, a few seconds after the
# first run). install/ holds copies of the Python sources beside the generated msg/: run this
# (or `make build`) after editing seg_perception/ and before running tests by hand.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV="$root/.venv"
mkdir -p log
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
"$VENV/bin/colcon" --log-base log build --base-paths "$root" --build-base build --install-base install \
  --symlink-install --event-handlers console_cohesion- summary- status- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >log/colcon-build.out 2>&1 || {
  cat log/colcon-build.out 2>/dev/null; echo "[build] colcon build failed" >&2; exit 1; }
