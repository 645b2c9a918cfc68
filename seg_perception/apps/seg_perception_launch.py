"""seg_perception_launch: run launch/segmentation.launch.py through the launch library, as
`ros2 launch seg_perception segmentation.launch.py NAME:=VALUE ...` does, where the `ros2` command
is absent (the pip environment of this repository).

    seg_perception_launch [NAME:=VALUE ...]
    seg_perception_launch --show-args

The arguments are the launch file's (image, camera_info, depth, params_file, use_rviz, model,
...; --show-args lists them with their defaults). Ctrl-C stops everything it started.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

PROG = "seg_perception_launch"
LAUNCH_FILE = "segmentation.launch.py"


def _error(text: str) -> int:
    print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description=(__doc__ or "").split("\n\n")[0],
                                     epilog="example:\n  " + PROG + " image:=/camera/color/image_raw "
                                            "model:=drivable use_rviz:=true")
    parser.add_argument("arguments", nargs="*", metavar="NAME:=VALUE", help="launch arguments")
    parser.add_argument("--show-args", action="store_true", help="list the launch arguments and exit")
    args = parser.parse_args(list(sys.argv if argv is None else argv)[1:])
    bad = [a for a in args.arguments if ":=" not in a or a.startswith(":=")]
    if bad:
        return _error(f"launch arguments are NAME:=VALUE, got {bad} (--show-args lists the names)")
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        # Submodules: from the repository root, type checkers take launch/ (our launch files) for
        # the `launch` package.
        from launch.actions import IncludeLaunchDescription
        from launch.launch_context import LaunchContext
        from launch.launch_description import LaunchDescription
        from launch.launch_service import LaunchService
        from launch.launch_description_sources import PythonLaunchDescriptionSource
        from launch.utilities import perform_substitutions
    except ImportError as exc:
        return _error(f"the launch library is not installed here ({exc.name}): a ROS install has it "
                      "(ros-<distro>-launch-ros); in this repository's pip environment run scripts/setup_upstream.sh")
    try:
        path = f"{get_package_share_directory('seg_perception')}/launch/{LAUNCH_FILE}"
    except (PackageNotFoundError, OSError) as exc:
        return _error(f"seg_perception is not on the ament paths ({exc}): source scripts/env.sh (or install/setup.bash)")
    source = PythonLaunchDescriptionSource(path)
    if args.show_args:
        description = source.get_launch_description(LaunchContext())
        context = LaunchContext()
        for declared in description.get_launch_arguments():
            default = ("" if declared.default_value is None
                       else f" (default: '{perform_substitutions(context, declared.default_value)}')")
            print(f"{declared.name}:={default}\n    {declared.description}")
        return 0
    pairs = [tuple(a.split(":=", 1)) for a in args.arguments]
    known = {d.name for d in source.get_launch_description(LaunchContext()).get_launch_arguments()}
    unknown = [name for name, _ in pairs if name not in known]
    if unknown:
        import difflib

        hints = [f"{n} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(n, known, 1)) else n
                 for n in unknown]
        return _error(f"unknown launch arguments: {', '.join(hints)}; --show-args lists them")
    service = LaunchService(argv=[f"{n}:={v}" for n, v in pairs])
    service.include_launch_description(LaunchDescription([
        IncludeLaunchDescription(source, launch_arguments=pairs)]))
    return int(service.run())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
