#!/usr/bin/env bash
# Idempotent: .venv-NAME, a ROS-free environment pinned to the versions a stock robot of one ROS 2
# distribution gets from rosdep (requirements-NAME.txt), on that distribution's Python (pyenv):
#   stock:  Ubuntu 24.04 + Jazzy:  Python 3.12, OpenCV 4.6, numpy 1.26 (requirements-stock.txt)
#   humble: Ubuntu 22.04 + Humble: Python 3.10, OpenCV 4.5.4, numpy 1.21 (requirements-humble.txt)
# Rebuilt only when the requirements file (comments aside) or the interpreter changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
name=${1:?usage: setup_rosfree.sh stock|humble}
case "$name" in
  stock) version=3.12 ;;
  humble) version=3.10 ;;
  *) echo "[setup-$name] unknown environment (stock, humble)" >&2; exit 2 ;;
esac
# pyenv's interpreters directly (its shims answer only for the versions `pyenv global` names).
PY=""
for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version"; do
  [ -x "$candidate" ] && PY=$candidate
done
if [ -z "$PY" ] && command -v "python$version" >/dev/null && "python$version" -c "" 2>/dev/null; then
  PY=$(command -v "python$version")
fi
[ -n "$PY" ] || { echo "[setup-$name] Python $version not found (pyenv install $version, or put python$version on PATH)" >&2; exit 1; }
VENV="$root/.venv-$name"
requirements="requirements-$name.txt"
stamp="$VENV/.requirements.sha256"
want=$( { grep -v '^#' "$requirements"; echo "$PY"; } | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "[setup-$name] installing $requirements into .venv-$name on Python $version (~1 min)"
rm -rf "$VENV"
# A clean interpreter: the main venv's ROS wheel bootstrap marker must not leak in.
env -u PYTHONPATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u VIRTUAL_ENV "$PY" -m venv "$VENV"
if ! "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary :all: -r "$requirements" >"$VENV/pip-install.log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$VENV/pip-install.log" >&2
  echo "[setup-$name] pip install failed" >&2; exit 1
fi
# Fail early if pip resolved anything other than the pinned versions.
"$VENV/bin/python" - "$requirements" <<'PYEOF'
import sys
import cv2
import numpy
pins = dict(line.strip().split("==") for line in open(sys.argv[1]) if "==" in line and not line.startswith("#"))
assert numpy.__version__ == pins["numpy"], (numpy.__version__, pins["numpy"])
assert pins["opencv-python-headless"].startswith(cv2.__version__ + "."), (cv2.__version__, pins["opencv-python-headless"])
PYEOF
echo "$want" > "$stamp"
