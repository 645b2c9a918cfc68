#!/usr/bin/env bash
# Idempotent: a second ROS 2 environment for the node tests, beside the primary Jazzy one.
#   kilted: .venv-kilted from requirements-kilted.txt (ROS 2 Kilted wheels) + the non-ROS lines of
#           requirements.txt; this package built into build/kilted/install and the upstream
#           interfaces into build/kilted/upstream (scripts/build.sh, scripts/setup_upstream.sh with
#           SEG_PERCEPTION_DISTRO=kilted). ~3 min the first time, seconds after.
# Use it with SEG_PERCEPTION_DISTRO=kilted bash scripts/test.sh test/ros ...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
distro=${1:?usage: setup_distro.sh kilted}
[ -f "requirements-$distro.txt" ] || { echo "[setup-$distro] no requirements-$distro.txt" >&2; exit 2; }
VENV="$root/.venv-$distro"
PY=${PYTHON:-python3.11}
mkdir -p "build/$distro"
nonros="build/$distro/requirements-nonros.txt"
grep -v '^-r ' requirements.txt > "$nonros"
stamp="$VENV/.requirements.sha256"
want=$(cat "requirements-$distro.txt" "$nonros" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup-$distro] installing requirements-$distro.txt + requirements.txt's non-ROS pins into .venv-$distro (~2 min)"
  rm -rf "$VENV"
  env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u VIRTUAL_ENV -u PYTHONPATH "$PY" -m venv "$VENV"
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r "requirements-$distro.txt" -r "$nonros" \
      >"$VENV/pip-install.log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$VENV/pip-install.log" >&2
    echo "[setup-$distro] pip install failed" >&2; exit 1
  fi
  "$VENV/bin/python" "$root/scripts/fix_wheel_cmake.py"
  env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE AMENT_PREFIX_PATH="$VENV" "$VENV/bin/python" -c "import torch, rclpy, cv2, numpy"
  echo "$want" > "$stamp"
fi
SEG_PERCEPTION_DISTRO=$distro bash "$root/scripts/build.sh"
SEG_PERCEPTION_DISTRO=$distro bash "$root/scripts/setup_upstream.sh"
