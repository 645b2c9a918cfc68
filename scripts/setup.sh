#!/usr/bin/env bash
# Idempotent set-up: .venv with pinned ROS 2 Jazzy wheels (requirements.txt -> requirements-jazzy.txt)
# + torch (CPU build from local disk), then `colcon build` of this package into install/. Re-running
# does only what changed. Only what the node and the demo need: serve_triton's environment is
# scripts/setup_triton.sh (`make setup-triton`, or serve_triton's first run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV="$root/.venv"
PY=${PYTHON:-python3.11}

stamp="$VENV/.requirements.sha256"
# requirements-openvino.txt: the optional openvino runtime and int8 export (no rosdep key), installed
# here too so that their tests and bench section 8 run rather than skip.
want=$(cat requirements.txt requirements-jazzy.txt requirements-openvino.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing pinned wheels into .venv (first run: ~1 min)"
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt -r requirements-openvino.txt \
      >"$VENV/pip-install.log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$VENV/pip-install.log" >&2
    echo "[setup] pip install failed" >&2; exit 1
  fi
  "$VENV/bin/python" "$root/scripts/fix_wheel_cmake.py"
  AMENT_PREFIX_PATH="$VENV" "$VENV/bin/python" -c "import torch, rclpy, cv2, numpy"
  echo "$want" > "$stamp"
fi

# colcon build of this package into install/ (incremental; scripts/build.sh alone after edits)
bash "$root/scripts/build.sh"
echo "[setup] ready: .venv + install/ (source scripts/env.sh to use it by hand)"
