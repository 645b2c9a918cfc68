# Source me (bash): puts a venv + the colcon install/ of this package on the paths ROS 2 needs.
# Equivalent of `source install/setup.bash` for our pip-wheel ROS 2, safe under `set -u`.
# SEG_PERCEPTION_DISTRO picks the environment: unset = the primary one (ROS 2 Jazzy: .venv,
# install/, build/upstream); kilted = .venv-kilted, build/kilted/{install,upstream}
# (scripts/setup_distro.sh kilted).
_sp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export SEG_PERCEPTION_ROOT="$_sp_root"
if [ -n "${SEG_PERCEPTION_DISTRO:-}" ]; then
  _sp_venv="$_sp_root/.venv-$SEG_PERCEPTION_DISTRO"
  _sp_install="$_sp_root/build/$SEG_PERCEPTION_DISTRO/install/seg_perception"
  _sp_up="$_sp_root/build/$SEG_PERCEPTION_DISTRO/upstream/install"
else
  _sp_venv="$_sp_root/.venv"
  _sp_install="$_sp_root/install/seg_perception"
  _sp_up="$_sp_root/build/upstream/install"
fi
export VIRTUAL_ENV="$_sp_venv"
# The installed executables too, so the bare names in the docs and in the tools' hints
# (segmentation_node, segment_offline, export_model, serve_triton, camera_replay,
# seg_perception_launch) run as printed, as `ros2 run` would run them on a ROS install.
export PATH="$_sp_install/lib/seg_perception:$_sp_venv/bin:$PATH"
export AMENT_PREFIX_PATH="$_sp_install:$_sp_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_sp_install:$_sp_venv"
# The installed package first (it has the generated msg/); the repository root after it, for the
# development tooling (devtools/: the node harness and the demo; bench/), never installed.
export PYTHONPATH="$_sp_install/lib/python3.11/site-packages${PYTHONPATH:+:$PYTHONPATH}:$_sp_root"
export LD_LIBRARY_PATH="$_sp_install/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The upstream interfaces built by scripts/setup_upstream.sh (bond, composition_interfaces,
# vision_msgs, ...), when present: behind this package, in front of the venv.
if [ -d "$_sp_up" ]; then
  export AMENT_PREFIX_PATH="$_sp_install:$_sp_up:${AMENT_PREFIX_PATH#"$_sp_install:"}"
  export CMAKE_PREFIX_PATH="$_sp_install:$_sp_up:$_sp_venv"
  export PYTHONPATH="$_sp_up/lib/python3.11/site-packages:$PYTHONPATH"
  export LD_LIBRARY_PATH="$_sp_up/lib:$LD_LIBRARY_PATH"
fi
unset _sp_up _sp_install _sp_venv
# Large images across processes: shared-memory transport with 64 MB segments (see README). Fast DDS 3
# (Kilted) reads FASTDDS_DEFAULT_PROFILES_FILE, Fast DDS 2 (Jazzy, Humble) FASTRTPS_DEFAULT_PROFILES_FILE.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_sp_root/config/fastdds_shm.xml}"
export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$FASTDDS_DEFAULT_PROFILES_FILE}"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# serve_triton re-runs itself with this interpreter (pytriton needs numpy < 2; see requirements-triton.txt).
if [ -x "$_sp_root/.venv-triton/bin/python" ]; then
  export SEG_PERCEPTION_TRITON_PYTHON="$_sp_root/.venv-triton/bin/python"
fi
unset _sp_root
# No PYTHONSAFEPATH here: it would keep a user's own `python main.py` from importing the module
# beside it. scripts/run.sh sets it for the project's own `python -m` runs from the repository
# root, where the source tree would otherwise shadow the installed package (which has msg/).
