"""The first hour of a new user (issue 22), run as the user would: the README's by-hand commands
as written, mistakes at start that must end in one line and exit code 2, misspelled names that must
be pointed out, `--help` on every executable, and camera_info paired with its own frame when a
camera changes resolution."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from devtools.harness import Collector, installed_executable, node_command, stop_process, wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


def _executables() -> list[str]:
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"set\(SEG_PERCEPTION_EXECUTABLES ([^)]*)\)", text)
    assert match
    return match.group(1).split()


def _run_all(commands: dict[str, list[str]], env: dict[str, str] | None = None) -> dict[str, subprocess.CompletedProcess]:
    """Start every command at once (each imports rclpy/torch: seconds), then wait for each."""
    procs = {key: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, **(env or {})}) for key, cmd in commands.items()}
    done = {}
    for key, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        done[key] = subprocess.CompletedProcess(commands[key], proc.returncode, out, err)
    return done


def test_every_executable_prints_usage_for_help_and_exits() -> None:
    results = _run_all({name: [installed_executable(name), "--help"] for name in _executables()})
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-2000:])
        assert "usage:" in result.stdout, (name, result.stdout[:500])
        assert "Traceback" not in result.stderr, (name, result.stderr[-2000:])
    assert "confidence_threshold" in results["segmentation_node"].stdout  # the parameters are listed


def test_start_up_mistakes_end_in_one_line_and_exit_code_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("segmentation_node:\n  ros__parameters:\n    model: [unclosed\n")
    cases = {
        "int for a double": (["-p", "confidence_threshold:=1"], ["confidence_threshold", "got 1 (integer)",
                                                                  "a double in [0.0, 1.0]"]),
        "out of range": (["-p", "confidence_threshold:=1.5"], ["confidence_threshold", "got 1.5", "[0.0, 1.0]"]),
        "string for an array": (["-p", "cameras:=front"], ["cameras", "'front'", "string array"]),
        "broken params file": (["--params-file", str(broken)], [str(broken), "cannot be read"]),
        "missing params file": (["--params-file", str(tmp_path / "absent.yaml")], ["absent.yaml", "cannot be read"]),
    }
    results = _run_all({key: [installed_executable(), "--ros-args", *args] for key, (args, _) in cases.items()})
    for key, (_, expected) in cases.items():
        result = results[key]
        assert result.returncode == 2, (key, result.returncode, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("segmentation_node: error: "), (key, result.stderr[-2000:])
        for text in expected:
            assert text in lines[0], (key, text, lines[0])


def _log_until(proc: subprocess.Popen, needles: list[str], timeout: float) -> str:
    """Read the process's merged output until every needle has been seen (or it exits / times out)."""
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if all(any(n in s for s in seen) for n in needles):
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    return "".join(seen)


def test_misspelled_names_and_a_file_for_another_node_are_pointed_out(tmp_path: Path) -> None:
    """The node still runs (on what it was given right); with no camera it says, once and after
    input_timeout, what it waits on."""
    typo = tmp_path / "typo.yaml"
    typo.write_text("/**:\n  ros__parameters:\n    confidence_treshold: 0.5\n    input_timeout: 0.5\n")
    other = tmp_path / "other.yaml"
    other.write_text("segmentation_nod:\n  ros__parameters:\n    model: drivable\n")
    ns = f"/fh{os.getpid()}"
    cmd = node_command({"overlay_alpa": 0.2, "use_depth": False, "warmup_iterations": 0}, namespace=ns)
    cmd[2:2] = ["--params-file", str(typo), "--params-file", str(other)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    needles = ["did you mean 'confidence_threshold'", "did you mean 'overlay_alpha'",
               "has no section for this node", f"no image on {ns}/image"]
    try:
        log = _log_until(proc, needles, TIMEOUT * 2)
        assert proc.poll() is None, log
    finally:
        stop_process(proc)
    for needle in needles:
        assert needle in log, (needle, log)
    assert "'segmentation_nod'" in log
    assert log.count(f"no image on {ns}/image") == 1  # once, not every diagnostics period


def _readme_by_hand_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### By hand"):]
    block = section[section.index("```bash") + len("```bash"):]
    block = block[:block.index("```")]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_readme_by_hand_commands_connect_as_written(ros: Any) -> None:
    commands = _readme_by_hand_commands()
    assert [c.split()[0].rsplit("/", 1)[-1] for c in commands] == ["segmentation_node", "camera_replay"]
    subscribed = [arg for c in commands for arg in c.split() if arg.startswith("image:=")]
    assert len(set(subscribed)) == 1, commands  # the same topic on both sides
    mask_topic = "/segmentation/mask"
    if "__ns:=" in commands[0]:
        pytest.fail("the README's node command has a namespace; update the mask topic here")
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import PointCloud2

    # A points subscriber asks for clouds, with no depth camera: the depth status must say that
    # no depth image ever arrived (not "no depth image with a matching stamp").
    out = Collector(ros, [(mask_topic, Image), ("/segmentation/points", PointCloud2), ("/diagnostics", DiagnosticArray)])
    procs = [subprocess.Popen(c.split(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
             for c in commands]

    def depth_said(m: dict[str, list[tuple[float, Any]]]) -> bool:
        return any(s.name.endswith("segmentation_node: depth") and "no depth image has arrived on /depth" in s.message
                   for _, d in m["/diagnostics"] for s in d.status)
    try:
        out.wait_for(lambda m: len(m[mask_topic]) >= 3, TIMEOUT * 2, "masks from the README's commands")
        out.wait_for(depth_said, TIMEOUT, "the depth status saying no depth image arrived")
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        for sub in out.subs:
            ros.destroy_subscription(sub)


def test_camera_info_follows_its_frame_when_the_size_changes(ros: Any, tmp_path: Path, seg_node: Any) -> None:
    """A folder of mixed sizes replayed: every frame's camera_info is its own (same stamp, same size)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        w, h = (512, 512) if i % 2 else (640, 480)
        cv2.imwrite(str(folder / f"{i:02d}.png"), rng.integers(0, 255, (h, w, 3), np.uint8))
    running = seg_node({"use_depth": False, "warmup_iterations": 0, "output_size": "input"})
    ns = running.namespace
    out = Collector(ros, [(f"{ns}/segmentation/mask", Image), (f"{ns}/segmentation/camera_info", CameraInfo)])
    wait_until(lambda: all(s.get_publisher_count() > 0 for s in out.subs), TIMEOUT, "the node's publishers")
    replay = subprocess.Popen([installed_executable("camera_replay"), "--source", str(folder), "--rate", "5",
                               "--ros-args", "-r", f"__ns:={ns}", "-r", "__node:=replay_fh"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    masks, infos = f"{ns}/segmentation/mask", f"{ns}/segmentation/camera_info"

    def stamp(msg: Any) -> tuple[int, int]:
        return msg.header.stamp.sec, msg.header.stamp.nanosec

    def since_first_info(m: dict[str, list[tuple[float, Any]]]) -> list[Any]:
        """The masks from the first frame the node had a camera_info for: until the node's
        camera_info subscription has matched the replay's publisher (discovery runs per topic),
        its first masks rightly go out without one."""
        if not m[infos]:
            return []
        first = min(stamp(i) for _, i in m[infos])
        return [mask for _, mask in m[masks] if stamp(mask) >= first]

    def pairs(m: dict[str, list[tuple[float, Any]]]) -> list[tuple[Any, Any]]:
        by_stamp = {stamp(i): i for _, i in m[infos]}
        return [(mask, by_stamp[stamp(mask)]) for mask in since_first_info(m) if stamp(mask) in by_stamp]

    try:
        # Latest wins: on a loaded machine most frames are dropped; a few of each size will do.
        out.wait_for(lambda m: len(since_first_info(m)) >= 6
                     and len({(x.width, x.height) for x in since_first_info(m)}) == 2,
                     TIMEOUT * 4, "masks of both sizes")
    finally:
        stop_process(replay)
    # A mask's camera_info can still be on its way: wait for them, then judge.
    try:
        out.wait_for(lambda m: len(pairs(m)) >= len(since_first_info(m)) - 1, TIMEOUT, "each mask's camera_info")
    except TimeoutError:
        pass  # judged below, with the counts
    with out.cond:
        judged = len(since_first_info(out.messages))
        paired = pairs(out.messages)
    for mask, info in paired:
        assert (info.width, info.height) == (mask.width, mask.height)
    # Every frame's own camera_info (before: 5 of 57). Best-effort delivery may lose one.
    assert len(paired) >= judged - 1, (len(paired), judged)
    assert "camera_info is" not in running.log and "not republishing the calibration" not in running.log, running.log
