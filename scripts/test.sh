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
# Built-ins exported to ONNX for runtime:=onnxruntime/openvino go here, not into ~/.cache.
export SEG_PERCEPTION_CACHE="${SEG_PERCEPTION_CACHE:-$root/build/cache}"
# Keep test traffic on this machine and away from other ROS graphs running here.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 101 ))}
# importlib mode + the pytest script (not `python -m`): the source tree is not put on sys.path,
# so `import seg_perception` is the installed package, with its generated msg/ beside our modules.
targets=(test)
for arg in "$@"; do
  case "$arg" in test/*|test) targets=() ;; esac
done
if [ "$#" -gt 0 ]; then
  exec "$root/.venv/bin/pytest" --import-mode=importlib -p no:cacheprovider -q "$@" "${targets[@]}"
fi
# The whole suite (`make test`): everything here, then the ROS-free tests again under the stock
# Ubuntu 24.04 + Jazzy versions (OpenCV 4.6, numpy 1.26); fails if either fails.
main=0
"$root/.venv/bin/pytest" --import-mode=importlib -p no:cacheprovider -q "${targets[@]}" || main=$?
echo "[test] the ROS-free tests again under the stock versions (scripts/test_stock.sh)"
stock=0
bash "$root/scripts/test_stock.sh" || stock=$?
echo "[test] main suite: exit $main; stock-version suite: exit $stock"
[ "$main" -eq 0 ] && [ "$stock" -eq 0 ]
