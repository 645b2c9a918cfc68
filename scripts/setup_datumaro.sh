#!/usr/bin/env bash
# Idempotent: build/venv-datumaro, Datumaro (the importer CVAT runs) in a venv of its own, because its
# OpenCV pin would change the shared .venv (requirements-datumaro.txt). Only from the package
# registries. Rebuilt only when requirements-datumaro.txt changes. The real-reader tests
# (test/unit/test_real_readers.py) use it when present and skip with the reason when it is not.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV="$root/build/venv-datumaro"
PY=${PYTHON:-python3.11}
stamp="$VENV/.requirements.sha256"
want=$(grep -v '^#' requirements-datumaro.txt | sha256sum | cut -d' ' -f1)  # comments do not count
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "[setup-datumaro] installing Datumaro into build/venv-datumaro"
rm -rf "$VENV"
mkdir -p "$root/build"
# A clean interpreter: the main venv's ROS wheel bootstrap marker must not leak in.
env -u PYTHONPATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u VIRTUAL_ENV "$PY" -m venv "$VENV"
if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-datumaro.txt >"$VENV/pip-install.log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$VENV/pip-install.log" >&2
  echo "[setup-datumaro] pip install failed" >&2; exit 1
fi
"$VENV/bin/python" -c "import datumaro; print('[setup-datumaro] datumaro', datumaro.__version__)"
echo "$want" > "$stamp"
