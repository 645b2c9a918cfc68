#!/usr/bin/env bash
# The whole test suite, against the colcon install (where seg_perception.msg exists).
set -eo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/scripts/env.sh"
cd "$root"
# Reference TFLite model for the fidelity test: taken from the mediapipe wheel on PyPI.
python tools/fetch_mediapipe_selfie.py --dest build/mediapipe_selfie >/dev/null
export SEG_PERCEPTION_MEDIAPIPE_DIR="$root/build/mediapipe_selfie"
# Keep test traffic on this machine and away from other ROS graphs running here.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 101 ))}
# importlib mode + the pytest script (not `python -m`): the source tree is not put on sys.path,
# so `import seg_perception` is the installed package, with its generated msg/ beside our modules.
targets=(test)
for arg in "$@"; do
  case "$arg" in test/*|test) targets=() ;; esac
done
exec "$root/.venv/bin/pytest" --import-mode=importlib -p no:cacheprovider -q "$@" "${targets[@]}"
