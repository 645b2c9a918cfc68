"""What a new user gets wrong at start, told in one line: values of the wrong type or out of
range, names that are no parameter (with the closest one), params files that set nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from seg_perception.live import params


def test_integer_for_a_double_names_parameter_value_type_range_and_the_fix() -> None:
    line = params.startup_value_problem("confidence_threshold", 1)
    assert line is not None and "\n" not in line
    assert "confidence_threshold" in line and "got 1 (integer)" in line
    assert "a double in [0.0, 1.0]" in line and "write 1.0" in line


def test_out_of_range_and_choices() -> None:
    line = params.startup_value_problem("confidence_threshold", 1.5)
    assert line == "parameter confidence_threshold: got 1.5, expected a double in [0.0, 1.0]"
    line = params.startup_value_problem("image_qos_depth", 0)
    assert line == "parameter image_qos_depth: got 0, expected an integer in [1, 100]"
    line = params.startup_value_problem("input_transport", "jpeg")
    assert line is not None and "one of raw, compressed" in line and "'jpeg'" in line


def test_a_string_for_a_string_array() -> None:
    line = params.startup_value_problem("cameras", "front")
    assert line is not None and "cameras" in line and "'front' (string)" in line
    assert "a string array" in line and "['front']" in line
    assert params.startup_value_problem("obstacle_classes", "person") is not None


def test_good_values_pass() -> None:
    good = {"confidence_threshold": 0.5, "cameras": ["front", "rear"], "obstacle_classes": [],
            "autostart": False, "image_qos_depth": 5, "model": "drivable", "input_transport": "compressed",
            "not_ours": 3}
    for name, value in good.items():
        assert params.startup_value_problem(name, value) is None, name
    for pdef in params.PARAMS:
        if not pdef.model_default:
            assert params.startup_value_problem(pdef.name, pdef.default) is None, pdef.name
    assert params.startup_value_problem("autostart", 1) is not None  # an int is no bool


def test_unknown_names_suggest_the_closest() -> None:
    lines = params.unknown_names(["confidence_treshold", "overlay_alpa", "model", "qos_overrides./x.depth",
                                  "zzzz"])
    assert lines == ["unknown parameter 'confidence_treshold' is ignored; did you mean 'confidence_threshold'?",
                     "unknown parameter 'overlay_alpa' is ignored; did you mean 'overlay_alpha'?",
                     "unknown parameter 'zzzz' is ignored"]


def test_params_files_are_found_in_ros_arguments() -> None:
    argv = ["node", "--ros-args", "--params-file", "a.yaml", "-p", "x:=1", "--params-file", "b.yaml"]
    assert params.params_files(argv) == ["a.yaml", "b.yaml"]


def test_params_file_for_another_node_is_reported(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("segmentation_nod:\n  ros__parameters:\n    model: drivable\n")
    (line,) = params.params_file_problems(str(wrong), "/segmentation_node")
    assert "no section for this node (/segmentation_node)" in line and "'segmentation_nod'" in line
    assert "did you mean" in line


@pytest.mark.parametrize("key", ["segmentation_node", "/segmentation_node", "/**", "/**/segmentation_node",
                                 "/robot/segmentation_node", "/*/segmentation_node", "robot/*"])
def test_params_file_sections_that_apply(tmp_path: Path, key: str) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(f"{key}:\n  ros__parameters:\n    model: drivable\n")
    fqn = "/robot/segmentation_node" if "robot" in key or "*/" in key else "/segmentation_node"
    assert params.params_file_problems(str(good), fqn) == []


def test_params_file_without_ros_parameters(tmp_path: Path) -> None:
    bad = tmp_path / "flat.yaml"
    bad.write_text("segmentation_node:\n  model: drivable\n")
    (line,) = params.params_file_problems(str(bad), "/segmentation_node")
    assert "no 'ros__parameters:'" in line


def test_unreadable_params_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(params.StartupParameterError, match="cannot be read") as missing:
        params.read_params_file(str(tmp_path / "absent.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("segmentation_node:\n  ros__parameters:\n    model: [unclosed\n")
    with pytest.raises(params.StartupParameterError, match="cannot be read") as bad:
        params.read_params_file(str(broken))
    for exc in (missing, bad):
        assert "\n" not in str(exc.value)


def test_no_input_advice_names_the_topic_and_the_remap_that_connects() -> None:
    from seg_perception.live.health import no_input_advice

    line = no_input_advice("/camera/image_raw", "image", "sensor_msgs/msg/Image", 2.04, [],
                           [("/image", ["/camera_replay"]), ("/other", [])])
    assert line.startswith("no image on /camera/image_raw (sensor_msgs/msg/Image) for 2.0 s: nothing publishes it")
    assert "/image (by /camera_replay)" in line and "-r image:=/image" in line
    alone = no_input_advice("/image", "image", "sensor_msgs/msg/Image", 3.0, [], [])
    assert "no sensor_msgs/msg/Image topic is published on this ROS domain" in alone
    heard = no_input_advice("/image", "image", "sensor_msgs/msg/Image", 3.0, ["/cam"], [])
    assert "although /cam publishes it" in heard


def test_env_sh_leaves_the_users_python_alone(tmp_path: Path) -> None:
    """After `source scripts/env.sh`, a user's `python main.py` imports the module beside it, and
    the executables run by their bare names."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    (tmp_path / "main.py").write_text("import helper\nprint(helper.VALUE)\n")
    result = subprocess.run(["bash", "-c", f'source "{root}/scripts/env.sh" && cd "{tmp_path}" && python main.py '
                             '&& command -v segmentation_node segment_offline export_model serve_triton camera_replay'],
                            capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"})
    assert result.returncode == 0, result.stderr[-1000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "42"  # the module beside main.py
    # The installed executables are on PATH: the docs' and hints' bare names run as printed.
    assert [Path(line).name for line in lines[1:]] == ["segmentation_node", "segment_offline", "export_model",
                                                        "serve_triton", "camera_replay"]


def test_health_watch_logs_changes_only_and_the_recovery() -> None:
    from seg_perception.live.health import HealthWatch

    watch = HealthWatch()
    assert watch.update(False, "not connected yet", 0.0) is None  # not asked yet: nothing to say
    assert watch.update(True, "connected to Triton server h:1", 1.0) == ("info", "connected to Triton server h:1")
    assert watch.update(True, "connected to Triton server h:1", 2.0) is None
    assert watch.update(False, "h:1 unreachable", 3.0) == ("error", "inference server failing: h:1 unreachable")
    assert watch.update(False, "h:1 unreachable", 4.0) is None
    assert watch.update(True, "connected", 10.5) == ("info", "inference server back after 7.5 s: connected")


def test_start_up_log_names_the_runtime_that_runs_the_model() -> None:
    pytest.importorskip("torch")
    from seg_perception.model.base import describe_runtime
    from seg_perception.model.loader import load_model
    from seg_perception.model.runtimes.triton import TritonRuntime, parse_address

    local = load_model("selfie", "cpu")
    try:
        assert describe_runtime(local, "cpu (2 threads)") == "PyTorch on cpu (2 threads)"
    finally:
        local.close()
    remote = TritonRuntime(parse_address("triton://localhost:8001/selfie"), local.spec)
    assert describe_runtime(remote, "cpu (2 threads)") == "the Triton server localhost:8001 (model 'selfie')"
