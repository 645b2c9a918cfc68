#!/usr/bin/env bash
# The test suite, against the colcon install (where seg_perception.msg exists).
#   scripts/test.sh ARGS...   pytest ARGS in the primary environment (ROS 2 Jazzy: .venv, install/);
#                             SEG_PERCEPTION_DISTRO=kilted runs them in .venv-kilted instead.
#   scripts/test.sh           (`make test`) every environment, each timed:
#     jazzy   the whole suite on Jazzy's rclpy (the LTS robots run), Python 3.11, numpy 2, OpenCV 5
#     kilted  the core node tests (KILTED_TESTS) again on Kilted's rclpy, until Kilted's end of life
#     stock   the ROS-free tests on a stock Ubuntu 24.04 + Jazzy's Python 3.12, OpenCV 4.6, numpy 1.26
#     humble  the ROS-free tests on a stock Ubuntu 22.04 + Humble's Python 3.10, OpenCV 4.5.4, numpy 1.21
#             (Humble's rclpy API is checked by test/unit/test_humble_api.py in every run)
set -eo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
KILTED_END_OF_LIFE=20261231

if [ "$#" -eq 0 ]; then
  cd "$root"
  # Each environment starts from the caller's environment, not from another one's paths.
  clean=(env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH -u LD_LIBRARY_PATH -u PYTHONPATH -u VIRTUAL_ENV
         -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u SEG_PERCEPTION_DISTRO -u PYTHONSAFEPATH)
  KILTED_TESTS="test/ros/test_node.py test/ros/test_lifecycle_config.py test/ros/test_humble_compat.py test/ros/test_label_info.py test/ros/test_depth_node.py"
  summary=()
  failed=0
  part() {
    local name=$1 start=$SECONDS rc=0
    shift
    echo "[test] === $name ==="
    "$@" || rc=$?
    summary+=("[test] $name: exit $rc in $((SECONDS - start)) s")
    [ "$rc" -eq 0 ] || failed=1
  }
  part "jazzy (whole suite)" "${clean[@]}" bash "$root/scripts/test.sh" test
  if [ "$(date -u +%Y%m%d)" -le "$KILTED_END_OF_LIFE" ]; then
    # The node's contract on Kilted's rclpy (topics, headers, parameters, lifecycle, the Humble
    # shims): the whole node suite runs on Jazzy; `make test-kilted` runs all of it on Kilted.
    part "kilted (node tests)" "${clean[@]}" bash -c "bash scripts/setup_distro.sh kilted && SEG_PERCEPTION_DISTRO=kilted bash scripts/test.sh $KILTED_TESTS" \
      </dev/null
  else
    summary+=("[test] kilted: past its end of life ($KILTED_END_OF_LIFE): not run; drop requirements-kilted.txt")
  fi
  part "stock Jazzy versions (ROS-free, Python 3.12)" "${clean[@]}" bash scripts/test_rosfree.sh stock
  part "Humble versions (ROS-free, Python 3.10)" "${clean[@]}" bash scripts/test_rosfree.sh humble
  printf '%s\n' "${summary[@]}"
  exit "$failed"
fi

# shellcheck source=/dev/null
source "$root/scripts/env.sh"
cd "$root"
# Reference TFLite model for the fidelity test: taken from the mediapipe wheel on PyPI.
python tools/fetch_mediapipe_selfie.py --dest build/mediapipe_selfie >/dev/null
export SEG_PERCEPTION_MEDIAPIPE_DIR="$root/build/mediapipe_selfie"
# Built-ins exported to ONNX for runtime:=onnxruntime/openvino go here, not into ~/.cache.
export SEG_PERCEPTION_CACHE="${SEG_PERCEPTION_CACHE:-$root/build/cache}"
# Keep test traffic on this machine and away from other ROS graphs running here.
# Fast DDS 2 (Jazzy): devtools/fastdds_jazzy_tests.xml, one 64 MB shared-memory transport and UDP on
# 127.0.0.1 only, under the SUBNET range (which leaves the profile's transports alone). With
# config/fastdds_shm.xml under LOCALHOST, rmw adds a shared-memory transport of its own, so every
# participant held two on the same ports, and two of three whole-suite runs (one of them CI's) lost
# all delivery into the long-lived test process from one test on. Without any profile, frames above
# ~0.5 MB go as UDP fragments and best-effort ones get lost (two hostile-input tests timed out).
# Fast DDS 3 (Kilted) keeps LOCALHOST and config/fastdds_shm.xml (FASTDDS_DEFAULT_PROFILES_FILE).
if [ "${SEG_PERCEPTION_DISTRO:-jazzy}" = jazzy ]; then
  export FASTRTPS_DEFAULT_PROFILES_FILE="$root/devtools/fastdds_jazzy_tests.xml"
  export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET
else
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
fi
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 101 ))}
# importlib mode + the pytest script (not `python -m`): the source tree is not put on sys.path,
# so `import seg_perception` is the installed package, with its generated msg/ beside our modules.
targets=(test)
for arg in "$@"; do
  case "$arg" in test/*|test) targets=() ;; esac
done
exec "$VIRTUAL_ENV/bin/pytest" --import-mode=importlib -p no:cacheprovider -q "$@" "${targets[@]}"
