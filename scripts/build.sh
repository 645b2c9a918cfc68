#!/usr/bin/env bash
# colcon build of this package into install/ against .venv (incremental, a few seconds after the
# first run). install/ holds copies of the Python sources beside the generated msg/: run this
# (or `make build`) after editing seg_perception/ and before running tests by hand.
# SEG_PERCEPTION_DISTRO=kilted builds into build/kilted/install against .venv-kilted instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -n "${SEG_PERCEPTION_DISTRO:-}" ]; then
  VENV="$root/.venv-$SEG_PERCEPTION_DISTRO"
  base="$root/build/$SEG_PERCEPTION_DISTRO"
  build_base="$base/colcon" install_base="$base/install" log_base="$base/log"
else
  VENV="$root/.venv"
  build_base="$root/build" install_base="$root/install" log_base="$root/log"
fi
mkdir -p "$log_base"
# Nothing under build/ is a package of this workspace (upstream copies, other distributions' builds).
mkdir -p "$root/build"
touch "$root/build/COLCON_IGNORE"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
"$VENV/bin/colcon" --log-base "$log_base" build --base-paths "$root" --build-base "$build_base" \
  --install-base "$install_base" --symlink-install --event-handlers console_cohesion- summary- status- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$log_base/colcon-build.out" 2>&1 || {
  cat "$log_base/colcon-build.out" 2>/dev/null; echo "[build] colcon build failed" >&2; exit 1; }
