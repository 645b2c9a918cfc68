"""serve_triton: serve a segmentation model to many nodes on a real Triton Inference Server.

    serve_triton --model MODEL [--description YAML] [--name NAME] [--grpc-port P] [--http-port P]
                 [--max-batch N] [--device cpu|cuda] [--host ADDRESS] [--tls-cert PEM --tls-key PEM]

MODEL is a builtin name, a TorchScript or an ONNX file (as the node's `model`). The server is
the `tritonserver` bundled with nvidia-pytriton; requests from all clients go through Triton's
dynamic batcher into one copy of the model. Nodes then use `model: triton://HOST:PORT/NAME`.
It binds to 127.0.0.1 unless --host says otherwise (see docs/scaling.md before exposing it).

    serve_triton --write-repo DIR --model MODEL [--backend onnxruntime|tensorrt|pytorch]

writes a model repository for NVIDIA's production Triton server instead (docs/scaling.md).

nvidia-pytriton 0.7.0 needs numpy < 2 (under numpy 2 its data path returns empty tensors);
when this interpreter has numpy 2, serve_triton re-runs itself with SEG_PERCEPTION_TRITON_PYTHON,
the interpreter of a small environment holding pytriton + numpy 1.26 (`make setup-triton` makes
.venv-triton for it; in a checkout, the first run makes it when it is missing).
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import socket
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_REEXEC_MARK = "_SEG_PERCEPTION_TRITON_REEXEC"
_LOG = logging.getLogger("serve_triton")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serve_triton", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="builtin name, TorchScript (.pt/.ts) or ONNX file")
    parser.add_argument("--description", default=None, help="the model's description YAML (model files)")
    parser.add_argument("--name", default=None, help="served model name (default: builtin name or file stem)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind gRPC/HTTP/metrics to (default 127.0.0.1: this machine only)")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics; 0 turns them off")
    parser.add_argument("--max-batch", type=int, default=8, help="largest batch the dynamic batcher forms")
    parser.add_argument("--max-queue-delay-us", type=int, default=2000,
                        help="how long the batcher may hold a request to fill a batch")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--tls-cert", default=None, help="server certificate (PEM): gRPC over TLS")
    parser.add_argument("--tls-key", default=None, help="server private key (PEM)")
    parser.add_argument("--tls-root-cert", default=None,
                        help="CA (PEM) that client certificates must be signed by: mutual TLS")
    parser.add_argument("--allow-shared-memory", action="store_true",
                        help="let clients on this machine register shared-memory regions (nodes with "
                             "triton_shared_memory); off: that API needs pytriton's access token")
    parser.add_argument("--allow-statistics", action="store_true",
                        help="let clients read the server's inference statistics (per-model inference and "
                             "execution counts: how well requests batch); off: that API needs pytriton's "
                             "access token")
    parser.add_argument("--verbose", action="store_true",
                        help="show the Triton server's own log (by default only this tool's lines and errors)")
    parser.add_argument("--write-repo", default=None, metavar="DIR",
                        help="write a model repository for NVIDIA's Triton server instead of serving")
    parser.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "tensorrt", "pytorch"),
                        help="--write-repo: ONNX Runtime (ONNX files), TensorRT (ONNX Runtime with the "
                             "TensorRT accelerator) or PyTorch/libtorch (builtin and TorchScript)")
    parser.add_argument("--instances", type=int, default=1, help="--write-repo: model copies per GPU")
    parser.add_argument("--fp16", action="store_true", help="--write-repo: TensorRT precision FP16")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`argv` is sys.argv-like: argv[0] is the program name."""
    args = build_parser().parse_args(list(sys.argv if argv is None else argv)[1:])
    logging.basicConfig(level=logging.INFO, format="[serve_triton] %(message)s")
    from ..model.base import DeviceError, ModelLoadError

    if args.write_repo:
        from ..deploy.triton_repo import write_repository
        try:
            target = write_repository(args.model, args.write_repo, name=args.name, description=args.description,
                                      backend=args.backend, max_batch=args.max_batch, instances=args.instances,
                                      gpu=args.device != "cpu", fp16=args.fp16)
        except (ModelLoadError, DeviceError, ValueError) as exc:
            return _error(str(exc))
        print(f"wrote {target} (config.pbtxt + 1/{next((target / '1').iterdir()).name}); serve it with "
              f"NVIDIA's server: see docs/scaling.md", flush=True)
        return 0

    if bool(args.tls_cert) != bool(args.tls_key):
        return _error("TLS needs both --tls-cert and --tls-key")
    if args.max_batch < 1:
        return _error("--max-batch must be at least 1")
    busy = busy_port(args.host, [("--grpc-port", args.grpc_port), ("--http-port", args.http_port),
                                 ("--metrics-port", args.metrics_port)])
    if busy:
        return _error(busy)
    other = _server_python()
    if other is None and int(np.__version__.split(".")[0]) >= 2 and importlib.util.find_spec("pytriton") is None:
        other = _set_up_on_first_use()
    if other is not None:
        return _reexec(other, list(sys.argv if argv is None else argv)[1:])
    if importlib.util.find_spec("pytriton") is None:
        return _error("nvidia-pytriton is not installed here (pip install nvidia-pytriton==0.7.0 'numpy<2'), "
                      "and SEG_PERCEPTION_TRITON_PYTHON names no interpreter that has it")
    _use_matching_libpython()

    from ..model.loader import load_model
    from ..deploy.triton_repo import default_name
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        runtime = load_model(args.model, args.device, description=args.description)
    except (ModelLoadError, DeviceError) as exc:
        # The loader's hint names the node's parameter; here it is this tool's flag.
        return _error(str(exc).replace("device:=", "--device "))
    try:
        return serve(runtime, args.name or default_name(args.model), args)
    finally:
        runtime.close()


def serve(runtime: Any, name: str, args: argparse.Namespace) -> int:
    """Bind `runtime` to a Triton server and block until SIGINT/SIGTERM."""
    import torch
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, TritonSecurityConfig

    spec = runtime.spec
    shape = (3, spec.input_height, spec.input_width)
    input_dtype = np.dtype(runtime.dtype) if runtime.array_io else (
        np.dtype(np.float16) if runtime.dtype == torch.float16 else np.dtype(np.float32))
    probe = forward(runtime, np.zeros((1, *shape), input_dtype))
    try:
        batched = forward(runtime, np.zeros((2, *shape), input_dtype)).shape
        max_batch = args.max_batch if batched == (2, *probe.shape[1:]) else 1
    except Exception:  # noqa: BLE001 - a fixed-batch model refuses a batch of two in its own way
        max_batch = 1
    if max_batch == 1 and args.max_batch > 1:
        _LOG.info("model '%s' has a fixed batch of one: serving without batching", name)
    output_dtype = probe.dtype.type

    @batch  # type: ignore[misc]
    def infer(input: np.ndarray) -> dict[str, np.ndarray]:  # noqa: A002 - the tensor's name
        return {"output": forward(runtime, input)}

    # Only options in use: pytriton passes every field given, and the server treats a present
    # TLS flag as TLS wanted.
    options: dict[str, Any] = dict(grpc_address=args.host, grpc_port=args.grpc_port, http_address=args.host,
                                   http_port=args.http_port, exit_on_error=True)
    if args.metrics_port > 0:
        options.update(metrics_address=args.host, metrics_port=args.metrics_port)
    else:
        options.update(allow_metrics=False)
    if args.tls_cert:
        options.update(grpc_use_ssl=True, grpc_server_cert=args.tls_cert, grpc_server_key=args.tls_key)
        if args.tls_root_cert:
            options.update(grpc_use_ssl_mutual=True, grpc_root_cert=args.tls_root_cert)
    if not args.verbose:
        # Quiet by default: a healthy start printed ~55 lines, some of them E.../Error: lines
        # about CUDA on a CPU machine. The server's log goes to a file, named below.
        log_file = Path(tempfile.mkdtemp(prefix="serve_triton_")) / "tritonserver.log"
        options.update(log_file=log_file)
        logging.getLogger("pytriton").setLevel(logging.WARNING)
    config = TritonConfig(**options)
    # pytriton protects its admin APIs (shared memory, repository, statistics...) with a random
    # token; shared memory is opened only on request, for clients on this machine.
    opened = {"shared-memory"} if args.allow_shared_memory else set()
    opened |= {"statistics"} if args.allow_statistics else set()
    protected = [e for e in DEFAULT_PROTECTED_ENDPOINTS if e not in opened]
    security = TritonSecurityConfig(restricted_endpoints=protected)
    with Triton(config=config, security_config=security) as triton:
        triton.bind(model_name=name, infer_func=infer,
                    inputs=[Tensor(name="input", dtype=input_dtype, shape=shape)],
                    outputs=[Tensor(name="output", dtype=output_dtype, shape=tuple(probe.shape[1:]))],
                    config=ModelConfig(max_batch_size=max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us)),
                    strict=True)
        print(f"[serve_triton] serving '{name}' ({spec.input_width}x{spec.input_height}, max batch {max_batch}, "
              f"{runtime.device}) on grpc {args.host}:{args.grpc_port}"
              f"{' (TLS)' if args.tls_cert else ''}; node parameter model:=triton://"
              f"{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.grpc_port}/{name}"
              + ("" if args.verbose else f" (server log: {options['log_file']}; --verbose prints it here)"),
              flush=True)
        triton.serve()
    return 0


def busy_port(host: str, ports: list[tuple[str, int]]) -> str | None:
    """Why the server could not listen: the first of `ports` (flag, number; 0 = off) already
    taken on `host` (tritonserver itself would fail later with a misleading access-token error)."""
    for flag, port in ports:
        if port <= 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                return (f"port {port} on {host} ({flag}) is in use ({exc.strerror or exc}): another serve_triton "
                        f"or Triton server? stop it, or choose a free port with {flag}")
    return None


def forward(runtime: Any, batch: np.ndarray) -> np.ndarray:
    """One batch through any runtime the loader makes: numpy in and out for array_io runtimes
    (ONNX Runtime on the CPU), torch tensors on the runtime's device for the others."""
    if runtime.array_io:
        return np.asarray(runtime(np.ascontiguousarray(batch, dtype=runtime.dtype)))
    import torch

    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device=runtime.device, dtype=runtime.dtype)
        return np.asarray(runtime(tensor).cpu().numpy())


def _server_python() -> str | None:
    """Another interpreter to run in when this one cannot run pytriton (numpy 2), else None."""
    if int(np.__version__.split(".")[0]) < 2 or os.environ.get(_REEXEC_MARK):
        return None
    python = os.environ.get("SEG_PERCEPTION_TRITON_PYTHON", "")
    # Not resolved: venv interpreters are symlinks to one base interpreter; the venv is the path.
    if python and Path(python).is_file() and os.path.abspath(python) != os.path.abspath(sys.executable):
        return python
    return None


def _set_up_on_first_use() -> str | None:
    """In a checkout (scripts/env.sh names it in SEG_PERCEPTION_ROOT): make .venv-triton with
    scripts/setup_triton.sh, as `make setup-triton` does, and return its interpreter; else None."""
    root = os.environ.get("SEG_PERCEPTION_ROOT", "")
    script = Path(root) / "scripts" / "setup_triton.sh"
    if not root or not script.is_file():
        return None
    print("serve_triton: first use, setting up its environment .venv-triton (2-4 min, once; "
          "`make setup-triton` does the same)", flush=True)
    import subprocess

    if subprocess.run(["bash", str(script)], check=False).returncode != 0:
        return None
    python = Path(root) / ".venv-triton" / "bin" / "python"
    return str(python) if python.is_file() else None


def _reexec(python: str, args: list[str]) -> int:
    import seg_perception

    env = dict(os.environ)
    env[_REEXEC_MARK] = "1"
    env["PYTHONSAFEPATH"] = "1"  # `-m` from a source checkout must not import the source tree
    package_parent = str(Path(seg_perception.__file__).resolve().parents[1])
    env["PYTHONPATH"] = package_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    sys.stdout.flush()
    os.execve(python, [python, "-m", "seg_perception.apps.serve_triton", *args], env)
    return 1  # not reached


def _use_matching_libpython() -> None:
    """Triton's Python backend stub links libpython3.X by soname; the system's may be an older
    patch release than this interpreter's standard library (seen: pyenv 3.11.7 beside Debian's
    3.11.2, failing in multiprocessing). Put this interpreter's own libpython first."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    library = sysconfig.get_config_var("LDLIBRARY") or ""
    if library.endswith(".so") and (Path(libdir) / library).exists():
        current = os.environ.get("LD_LIBRARY_PATH", "")
        if libdir not in current.split(os.pathsep):
            os.environ["LD_LIBRARY_PATH"] = libdir + (os.pathsep + current if current else "")


def _error(message: str) -> int:
    print(f"serve_triton: error: {message}", file=sys.stderr, flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
