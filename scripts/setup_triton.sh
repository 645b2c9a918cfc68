#!/usr/bin/env bash
# Idempotent: serve_triton's environment (.venv-triton): pytriton + numpy 1.26 over .venv's packages
# (requirements-triton.txt). Not part of `make setup`/`make demo`: `make setup-triton` makes it, and
# serve_triton runs this on its first use when it is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV="$root/.venv"
TVENV="$root/.venv-triton"
PY=${PYTHON:-python3.11}
tstamp="$TVENV/.requirements.sha256"
twant=$(cat requirements-triton.txt requirements.txt requirements-jazzy.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$tstamp" 2>/dev/null)" = "$twant" ]; then
  exit 0
fi
echo "[setup-triton] installing serve_triton's environment into .venv-triton (first run: ~2-4 min)"
[ -x "$TVENV/bin/python" ] || "$PY" -m venv "$TVENV"
if ! "$TVENV/bin/pip" install -q --disable-pip-version-check -r requirements-triton.txt >"$TVENV/pip-install.log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$TVENV/pip-install.log" >&2
  echo "[setup-triton] pip install (.venv-triton) failed" >&2; exit 1
fi
tsite=$("$TVENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$tsite/zz_seg_perception_venv.pth"
"$TVENV/bin/python" -c "import numpy, pytriton, torch, yaml"
echo "$twant" > "$tstamp"
