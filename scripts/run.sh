#!/usr/bin/env bash
# Run a command inside the project environment (.venv + install/ + DDS profile).
set -eo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/scripts/env.sh"
cd "$root"
# `python -m devtools.demo` from the repository root must import the installed package (which
# has the generated msg/), not the source tree in the current directory.
export PYTHONSAFEPATH=1
exec "$@"
