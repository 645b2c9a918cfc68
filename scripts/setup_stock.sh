#!/usr/bin/env bash
# Idempotent: .venv-stock, a second environment pinned to the versions a stock Ubuntu 24.04 +
# ROS 2 Jazzy robot gets from rosdep (requirements-stock.txt: OpenCV 4.6, numpy 1.26, ...).
# Rebuilt only when requirements-stock.txt changes (~30-50 s from the local wheel index).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV="$root/.venv-stock"
PY=${PYTHON:-python3.11}
stamp="$VENV/.requirements.sha256"
want=$(sha256sum requirements-stock.txt | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "[setup-stock] installing the stock-version wheels into .venv-stock (~30-50 s)"
rm -rf "$VENV"
# A clean interpreter: the main venv's ROS wheel bootstrap marker must not leak in.
env -u PYTHONPATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u VIRTUAL_ENV "$PY" -m venv "$VENV"
if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-stock.txt >"$VENV/pip-install.log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$VENV/pip-install.log" >&2
  echo "[setup-stock] pip install failed" >&2; exit 1
fi
"$VENV/bin/python" - <<'PYEOF'
# Fail early if pip resolved anything other than the pinned stock versions.
import cv2, numpy
assert cv2.__version__ == "4.6.0", cv2.__version__
assert numpy.__version__ == "1.26.4", numpy.__version__
PYEOF
echo "$want" > "$stamp"
