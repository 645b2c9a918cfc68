"""--ray: the frames of every source distributed over a Ray cluster, one model per actor.

The driver (this process) reads the sources, sends each frame's payload (file bytes included,
so workers need not see the files) to the actor with the fewest frames in flight, and takes
results back in submission order, so outputs are written in source order by the same writers
as a local run, and the progress bar counts frames finished anywhere in the cluster. Each actor
runs the same FrameSegmenter as a local run, with the torch thread count of a local run on the
driver's machine by default: on a CPU the float sums of a convolution are split by thread, so
another count can move a confidence value by one step (measured: 1 pixel of 9216), and the
results are byte-identical to a local run on the same kind of machine. Actors ask Ray for one GPU each with --device cuda
(or auto on a cluster with GPUs), else `cpus_per_actor` CPUs; the model must load on every node
(a builtin name, or a model file on a path every node can read).

`address`: 'auto' connects to the cluster RAY_ADDRESS names or `ray start` made on this machine,
and starts a local Ray instance when there is none, with small limits (no dashboard, a 256 MiB
object store, CPUs = the actors' needs); 'local' always starts one; any other value is passed to
ray.init (e.g. 'ray://head:10001', 'head:6379').
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from ..model.labels import ClassMap
from ..engine.pipeline import SegmentationOptions
from .frames import FrameRef, portable
from .segment import Outcome

LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
IN_FLIGHT_PER_ACTOR = 2
"""Frames queued on each actor: one computing, one ready to start, so no actor waits for the driver."""


class RayError(RuntimeError):
    pass


class SegmentActor:
    """Made a Ray actor at run time (ray.remote), so importing this module does not import ray."""

    def __init__(self, model: str, device: str, description: str | None, options: SegmentationOptions,
                 keep_frame: bool, review_threshold: float, threads: int, runtime: str = "auto") -> None:
        from ..engine.pipeline import SegmentationPipeline
        from ..model.loader import load_warm
        from .segment import FrameSegmenter

        self.threads = max(int(threads), 1)
        # The runtime sets its CPU thread count on whichever thread runs a forward: Ray may run
        # methods on another thread than __init__, where OMP_NUM_THREADS (Ray sets it to the
        # actor's CPUs) would apply otherwise.
        loaded = load_warm(model, device, 2, description=description, cpu_threads=self.threads, runtime=runtime)
        self.pipeline = SegmentationPipeline(loaded)
        self.segmenter = FrameSegmenter(self.pipeline, options, keep_frame, review_threshold)

    def describe(self) -> dict[str, Any]:
        import socket

        return {"class_map": self.pipeline.class_map, "device": str(self.pipeline.device),
                "model_name": self.pipeline.class_map.model_name or self.pipeline.spec.name,
                "host": socket.gethostname()}

    def segment(self, payload: Any) -> Outcome:
        return self.segmenter(payload)


def started_cluster() -> str | None:
    """RAY_ADDRESS, else the cluster `ray start` made on this machine (what ray.init() without an
    address looks for); None when there is neither. Ray's own address='auto' would also take any
    Ray found in the process list, such as another program's private local Ray on a shared machine."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env:
        return env
    from ray._private.services import find_bootstrap_address  # ray is pinned (requirements.txt)

    found = find_bootstrap_address(None)
    return str(found) if found else None


def connect(address: str, cpus_needed: int, log: Callable[[str], None]) -> None:
    import ray

    target = started_cluster() if address == "auto" else address
    if target is None:
        ray.init(address="local", num_cpus=max(cpus_needed, os.cpu_count() or 1), include_dashboard=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        log("no Ray cluster started here (ray start / RAY_ADDRESS): started a local Ray instance")
        return
    try:
        ray.init(address=target)
    except (ConnectionError, ValueError) as exc:
        raise RayError(f"cannot connect to the Ray cluster at '{target}': {exc}") from exc
    log(f"connected to the Ray cluster at '{target}'")


class RayExecutor:
    def __init__(self, address: str, actors: int | None, model: str, device: str, description: str | None,
                 options: SegmentationOptions, keep_frame: bool, review_threshold: float,
                 cpus_per_actor: int = 1, threads: int | None = None,
                 log: Callable[[str], None] = lambda _: None, runtime: str = "auto") -> None:
        import ray
        import torch

        threads = threads or torch.get_num_threads()

        wants_gpu = device.startswith("cuda")
        connect(address, (actors or 1) * cpus_per_actor, log)
        resources = ray.cluster_resources()
        if device == "auto" and resources.get("GPU", 0) >= 1:
            wants_gpu = True
        if actors is None:
            actors = int(resources.get("GPU", 0)) if wants_gpu else int(resources.get("CPU", 1)) // cpus_per_actor
            actors = max(actors, 1)
        have = resources.get("GPU" if wants_gpu else "CPU", 0)
        need = actors * (1 if wants_gpu else cpus_per_actor)
        if have < need:
            log(f"warning: {actors} actors need {need} {'GPUs' if wants_gpu else 'CPUs'}, the cluster has {have:g}; "
                "some wait until the cluster grows")
        remote = ray.remote(SegmentActor).options(num_cpus=cpus_per_actor, num_gpus=1 if wants_gpu else 0)
        self.actors: list[Any] = [remote.remote(model, device, description, options, keep_frame, review_threshold,
                                                threads, runtime) for _ in range(actors)]
        try:
            described = ray.get([a.describe.remote() for a in self.actors])
        except Exception as exc:  # noqa: BLE001 - a model that fails to load fails in every actor
            self.close()
            raise RayError(f"the Ray actors could not load model '{model}': {exc}") from exc
        first = described[0]
        self.class_map: ClassMap = first["class_map"]
        self.model_name: str = first["model_name"]
        self.devices = sorted({f"{d['host']}:{d['device']}" for d in described})
        log(f"{len(self.actors)} Ray actors, one model each, on {', '.join(self.devices)}")

    def map(self, refs: Iterator[FrameRef]) -> Iterator[tuple[FrameRef, Outcome]]:
        import ray

        in_flight: deque[tuple[FrameRef, Any, int]] = deque()
        pending = [0] * len(self.actors)
        limit = len(self.actors) * IN_FLIGHT_PER_ACTOR

        def finished() -> tuple[FrameRef, Outcome]:
            ref, future, actor = in_flight.popleft()
            try:
                outcome = ray.get(future)
            except ray.exceptions.RayError as exc:
                # A node lost, an actor out of memory...: stop with what was written kept (--resume).
                raise RayError(f"Ray failed on frame {ref.name} ({ref.source}): {exc}") from exc
            pending[actor] -= 1
            return ref, outcome

        for ref in refs:
            while len(in_flight) >= limit:
                yield finished()
            actor = min(range(len(self.actors)), key=pending.__getitem__)
            in_flight.append((ref, self.actors[actor].segment.remote(portable(ref.payload)), actor))
            pending[actor] += 1
        while in_flight:
            yield finished()

    def close(self) -> None:
        import ray

        for actor in getattr(self, "actors", []):
            ray.kill(actor)
        self.actors = []
        ray.shutdown()
