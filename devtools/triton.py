"""Start a real Triton server with serve_triton for tests and benchmarks, on free ports, and
wait for it with a timeout."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .harness import installed_executable

READY_TIMEOUT = 180.0
"""interpreter + torch + tritonserver + Python backend stub start, on a busy 2-core machine"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TritonServer:
    """serve_triton as its own process group (tritonserver and its stub are children)."""

    def __init__(self, model: str = "selfie", name: str | None = None, log_path: Path | None = None,
                 extra: Sequence[str] = (), grpc_port: int | None = None, http_port: int | None = None,
                 tls_root: str | None = None) -> None:
        self.model = model
        self.name = name or model
        self.grpc_port = grpc_port or free_port()
        self.http_port = http_port or free_port()
        self.extra = list(extra)
        self.log_path = log_path
        self.tls_root = tls_root
        """CA of the server's certificate when it serves TLS (extra has --tls-cert/--tls-key)."""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def model_uri(self) -> str:
        return f"triton://{self.url}/{self.name}"

    def start(self) -> TritonServer:
        cmd = [installed_executable("serve_triton"), "--model", self.model, "--name", self.name,
               "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port), "--metrics-port", "0",
               *self.extra]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Seconds until the model answers as ready; raises TimeoutError/RuntimeError."""
        import tritonclient.grpc as grpcclient

        assert self.proc is not None
        start = time.monotonic()
        url = f"localhost:{self.grpc_port}" if self.tls_root else self.url  # the certificate names localhost
        client = grpcclient.InferenceServerClient(url, ssl=bool(self.tls_root), root_certificates=self.tls_root)
        pause = threading.Event()
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve_triton exited with {self.proc.returncode}: {self.log()[-3000:]}")
                try:
                    if client.is_model_ready(self.name, client_timeout=2.0):
                        return time.monotonic() - start
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                if time.monotonic() - start > timeout:
                    raise TimeoutError(f"serve_triton not ready after {timeout:.0f} s: {self.log()[-3000:]}")
                pause.wait(0.2)
        finally:
            client.close()

    def statistics(self) -> tuple[int, int]:
        """(inference_count, execution_count) of the model, from the server's own statistics: an
        execution that ran N requests' worth of images adds N inferences and one execution."""
        import tritonclient.grpc as grpcclient

        url = f"localhost:{self.grpc_port}" if self.tls_root else self.url
        client = grpcclient.InferenceServerClient(url, ssl=bool(self.tls_root), root_certificates=self.tls_root)
        try:
            stats = client.get_inference_statistics(self.name, as_json=True, client_timeout=10.0)
        finally:
            client.close()
        model = next(m for m in stats["model_stats"] if m["name"] == self.name)
        # Protobuf JSON writes uint64 counters as strings, and leaves out the ones still zero.
        return int(model.get("inference_count", 0)), int(model.get("execution_count", 0))

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def pids(self) -> list[int]:
        """The server's processes (serve_triton, tritonserver, the Python backend stub)."""
        if self.proc is None:
            return []
        group = os.getpgid(self.proc.pid) if self.proc.poll() is None else None
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == group:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""
