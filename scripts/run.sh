#!/usr/bin/env bash
# Run a command inside the project environment (.venv + install/ + DDS profile).
set -eo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/scripts/env.sh"
cd "$root"
exec "$@"
