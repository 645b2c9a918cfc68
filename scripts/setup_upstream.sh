#!/usr/bin/env bash
# Idempotent: the real upstream ROS 2 packages that a stock ROS install gets from apt but no pip
# registry has, from ../shared/upstream (see its README), into the test environment:
#   - interfaces bond, smclib, composition_interfaces, vision_msgs, and tf2 (C++ core), tf2_msgs,
#     tf2_py, tf2_ros_py (ground projection looks up camera poses with tf2_ros): colcon build into
#     build/upstream/install (scripts/env.sh puts it on the paths when present);
#   - pure Python launch, launch_xml, launch_yaml, launch_testing, launch_ros,
#     launch_testing_ros, bondpy: pip install --no-deps into .venv (their pip dependencies,
#     osrf-pycommon and lark, are pinned in requirements.txt).
# Nothing is copied into the repository: sources are read from ../shared/upstream, build output
# stays under build/upstream. Without ../shared/upstream this does nothing and the tests that
# need these packages use the system's (a ROS install) or skip saying why.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
upstream=${SEG_PERCEPTION_UPSTREAM:-$(cd "$root/.." && pwd)/shared/upstream}
# SEG_PERCEPTION_DISTRO=kilted: into .venv-kilted and build/kilted/upstream (scripts/env.sh reads both).
if [ -n "${SEG_PERCEPTION_DISTRO:-}" ]; then
  VENV="$root/.venv-$SEG_PERCEPTION_DISTRO"
  out="$root/build/$SEG_PERCEPTION_DISTRO/upstream"
else
  VENV="$root/.venv"
  out="$root/build/upstream"
fi
if [ ! -d "$upstream/launch" ]; then
  echo "[setup-upstream] $upstream not found: nothing to build (the tests use an installed ROS or skip)"
  exit 0
fi
interfaces=(bond_core/bond bond_core/smclib rcl_interfaces/composition_interfaces vision_msgs/vision_msgs
            geometry2/tf2 geometry2/tf2_msgs geometry2/tf2_py geometry2/tf2_ros_py)
python_pkgs=(launch/launch launch/launch_xml launch/launch_yaml launch/launch_testing
             launch_ros/launch_ros launch_ros/launch_testing_ros bond_core/bondpy)

want=$( { sha256sum "$0"
          for d in "${interfaces[@]}" "${python_pkgs[@]}"; do
            find "$upstream/$d" -path '*/build' -prune -o -type f -printf '%P %s %T@\n' | sort
          done; } | sha256sum | cut -d' ' -f1)
site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# Rebuilt when the sources or this script change, or when .venv was made anew without them.
if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$want" ] && [ -d "$out/install" ] && [ -d "$site/launch_ros" ] \
   && [ -d "$site/bondpy" ]; then
  exit 0
fi
echo "[setup-upstream] building bond, smclib, composition_interfaces, vision_msgs, tf2, tf2_msgs, tf2_py, tf2_ros_py; installing launch, launch_ros, bondpy (~2 min)"
rm -rf "$out"
mkdir -p "$out/src"
# pip builds in the source tree (build/, *.egg-info): give it a writable copy under build/.
copies=()
for d in "${python_pkgs[@]}"; do
  copy="$out/src/$(basename "$d")"
  cp -r "$upstream/$d" "$copy"
  rm -rf "$copy/build" "$copy"/*.egg-info
  copies+=("$copy")
done
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation \
  "${copies[@]}" >"$out/pip-install.log" 2>&1 || {
  grep -v "is ignored: it is neither a file nor a directory" "$out/pip-install.log" >&2
  echo "[setup-upstream] pip install failed" >&2; exit 1; }
# The same toolchain and prefixes as the project's own build (scripts/setup.sh).
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
paths=("${interfaces[@]/#/$upstream/}")
"$VENV/bin/colcon" --log-base "$out/log" build --base-paths "${paths[@]}" \
  --build-base "$out/build" --install-base "$out/install" --merge-install \
  --event-handlers console_cohesion- summary- status- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$out/colcon-build.out" 2>&1 || {
  tail -50 "$out/colcon-build.out"; echo "[setup-upstream] colcon build failed" >&2; exit 1; }
echo "$want" > "$out/.stamp"
echo "[setup-upstream] ready: ${out#"$root/"}/install (+ tf2_ros) + launch, launch_ros, bondpy in ${VENV#"$root/"}"
