"""serve_triton from a new user's side: it serves every file type export_model writes, prints one
line on a healthy start, and says in one line why it cannot start (port in use, no CUDA)."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")

from devtools.harness import installed_executable  # noqa: E402
from devtools.triton import TritonServer  # noqa: E402
from seg_perception.apps import export_model  # noqa: E402
from seg_perception.apps.serve_triton import forward  # noqa: E402
from seg_perception.model.loader import load_model  # noqa: E402
from seg_perception.model.runtimes.triton import TritonOptions  # noqa: E402

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def _no_server_here(log: str) -> str | None:
    if "nvidia-pytriton is not installed" in log:
        return "serve_triton cannot start a server here: " + log.strip().splitlines()[-1]
    return None


def test_every_export_format_is_served_quietly(tmp_path: Path) -> None:
    models = {}
    for fmt, suffix in FORMATS.items():
        assert export_model.main(["export_model", "devtools.architectures:encoder_decoder", "--out", str(tmp_path),
                                  "--format", fmt, "--size", "64x32", "--name", f"ed_{fmt}"]) == 0
        models[fmt] = tmp_path / f"ed_{fmt}{suffix}"
    servers = {fmt: TritonServer(str(path), name=f"ed_{fmt}", log_path=tmp_path / f"{fmt}.log").start()
               for fmt, path in models.items()}
    try:
        for fmt, server in servers.items():
            try:
                server.wait_ready()
            except RuntimeError:
                reason = _no_server_here(server.log())
                if reason:
                    pytest.skip(reason)
                raise
            batch = np.random.default_rng(0).random((1, 3, 32, 64), dtype=np.float32)
            local = load_model(str(models[fmt]), "cpu")
            remote = load_model(server.model_uri, "cpu", description=str(models[fmt].with_suffix(".yaml")),
                                triton=TritonOptions(timeout_s=30.0))
            try:
                np.testing.assert_allclose(forward(remote, batch), forward(local, batch), atol=1e-4)
            finally:
                remote.close()
                local.close()
            lines = [line for line in server.log().splitlines() if line.strip()]
            # One line of its own on a healthy start; the server's own log is in a file.
            assert [line for line in lines if line.startswith("[serve_triton] serving")], lines
            assert not [line for line in lines if line[:1] in "EIW" and line[1:5].isdigit()], lines
            assert len(lines) <= 2, lines
    finally:
        for server in servers.values():
            server.stop()


def test_a_port_in_use_is_named_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([installed_executable("serve_triton"), "--model", "selfie", "--grpc-port", str(port),
                                 "--http-port", "0", "--metrics-port", "0"],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--grpc-port" in lines[0] and "in use" in lines[0], lines


def test_no_cuda_hint_names_this_tools_flag() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present: no error to check")
    result = subprocess.run([installed_executable("serve_triton"), "--model", "selfie", "--device", "cuda",
                             "--grpc-port", "0", "--http-port", "0", "--metrics-port", "0"],
                            capture_output=True, text=True, timeout=300)
    reason = _no_server_here(result.stderr)
    if reason:
        pytest.skip(reason)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device cpu" in lines[0] and "device:=" not in lines[0], lines
