#!/usr/bin/env bash
# Idempotent set-up: .venv with pinned ROS 2 Kilted wheels + torch (CPU build from local disk),
# then `colcon build` of this package into install/. Re-running does only what changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV="$root/.venv"
PY=${PYTHON:-python3.11}

stamp="$VENV/.requirements.sha256"
# requirements-openvino.txt: the optional openvino runtime and int8 export (no rosdep key), installed
# here too so that their tests and bench section 8 run rather than skip.
want=$(cat requirements.txt requirements-openvino.txt | sha256sum | cut -d' ' -f1)
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
  "$VENV/bin/python" - <<'PYEOF'
# The wheels' exported CMake files name the wheel-build container's Python and numpy include
# dirs; point them at this venv's, or CMake configure fails with "non-existent path".
import glob, sysconfig, numpy, pathlib, os
venv = os.environ.get("VIRTUAL_ENV") or sysconfig.get_paths()["data"]
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
for f in glob.glob(os.path.join(sysconfig.get_paths()["data"], "share", "**", "*.cmake"), recursive=True):
    p = pathlib.Path(f)
    t = p.read_text()
    if "/opt/python/cp311-cp311" not in t:
        continue
    t = t.replace("/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include", np_inc)
    t = t.replace("/opt/python/cp311-cp311/include/python3.11", py_inc)
    p.write_text(t)
PYEOF
  AMENT_PREFIX_PATH="$VENV" "$VENV/bin/python" -c "import torch, rclpy, cv2, numpy"
  echo "$want" > "$stamp"
fi

# serve_triton's environment: pytriton + numpy 1.26 over .venv's packages (requirements-triton.txt).
TVENV="$root/.venv-triton"
tstamp="$TVENV/.requirements.sha256"
twant=$(cat requirements-triton.txt requirements.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$tstamp" 2>/dev/null)" != "$twant" ]; then
  echo "[setup] installing serve_triton's environment into .venv-triton"
  [ -x "$TVENV/bin/python" ] || "$PY" -m venv "$TVENV"
  if ! "$TVENV/bin/pip" install -q --disable-pip-version-check -r requirements-triton.txt >"$TVENV/pip-install.log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$TVENV/pip-install.log" >&2
    echo "[setup] pip install (.venv-triton) failed" >&2; exit 1
  fi
  tsite=$("$TVENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$tsite/zz_seg_perception_venv.pth"
  "$TVENV/bin/python" -c "import numpy, pytriton, torch, yaml"
  echo "$twant" > "$tstamp"
fi

# colcon build of this package into install/ (incremental; scripts/build.sh alone after edits)
bash "$root/scripts/build.sh"
echo "[setup] ready: .venv + install/ (source scripts/env.sh to use it by hand)"
