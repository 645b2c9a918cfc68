"""An ONNX model on the CPU runs the whole frame path (CDR bytes in, pipeline, CDR bytes out)
without importing torch, and `cpu_threads` is the one thread count of whichever runtime runs
the model. Each check runs in a fresh interpreter: this test process has torch loaded."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

DESCRIPTION = """\
input: {width: 64, height: 48, scale: 0.00392156862745098, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
output: logits
classes: [background, {name: person, color: [220, 20, 60], obstacle: true}]
"""


class TwoClass(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx_no_torch")
    path = folder / "two_class.onnx"
    torch.manual_seed(0)
    torch.onnx.export(TwoClass().eval(), (torch.zeros(1, 3, 48, 64),), str(path), dynamo=False,
                      input_names=["input"], output_names=["logits"])
    (folder / "two_class.yaml").write_text(DESCRIPTION)
    return path


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_an_onnx_frame_never_imports_torch(onnx_model: Path) -> None:
    out = _run(f'''
        import sys
        import numpy as np
        from seg_perception.wire import cdr
        from seg_perception.wire.images import image_to_rgb
        from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
        from seg_perception.model import load_model, warm_up

        runtime = load_model({str(onnx_model)!r}, "auto", cpu_threads=1)
        warm_up(runtime, 2)
        pipeline = SegmentationPipeline(runtime, reuse_buffers=True)
        rgb = np.random.default_rng(0).integers(0, 256, (97, 131, 3), np.uint8)
        wire = cdr.image_bytes(cdr.header(5, 6, "cam"), rgb, "rgb8")
        msg = cdr.read_image(wire)
        result = pipeline(image_to_rgb(msg), SegmentationOptions(want_color=True, want_overlay=True))
        out = cdr.read_image(cdr.image_bytes(msg.header, result.labels, "mono8"))
        assert (out.width, out.height, out.header.frame_id) == (131, 97, "cam")
        assert result.color.shape == result.overlay.shape == (97, 131, 3)
        assert runtime.device.type == "cpu" and runtime.array_io
        leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print("torch modules:", leaked[:3])
        print("backend", pipeline.backend, int(result.labels.max()))
    ''')
    assert "torch modules: []" in out, out


def test_cpu_threads_sets_onnx_runtime_intra_op_threads(onnx_model: Path) -> None:
    from seg_perception.model import load_model

    for threads in (1, 2):
        runtime = load_model(str(onnx_model), "cpu", cpu_threads=threads)
        assert runtime.cpu_threads == threads  # type: ignore[attr-defined]
        options = runtime._session.get_session_options()  # type: ignore[attr-defined]
        assert options.intra_op_num_threads == threads and options.inter_op_num_threads == 1
        runtime.close()


def test_cpu_threads_sets_torch_threads_for_a_torch_model() -> None:
    out = _run('''
        import torch
        from seg_perception.model import load_model
        torch.set_num_threads(2)
        load_model("selfie", "cpu", cpu_threads=1)
        print("threads", torch.get_num_threads())
    ''')
    assert "threads 1" in out


def test_cpu_thread_count_auto_and_invalid() -> None:
    import os

    from seg_perception.model.base import cpu_thread_count

    assert cpu_thread_count(0) == len(os.sched_getaffinity(0))
    assert cpu_thread_count(3) == 3
    with pytest.raises(ValueError, match="cpu_threads"):
        cpu_thread_count(-1)


def test_the_torch_backend_hands_an_array_io_runtime_numpy(onnx_model: Path) -> None:
    """The torch backend (CUDA's, run on the CPU here) gives an array_io runtime numpy and takes
    numpy back: the results equal those of the same model run with torch tensors in and out."""
    import numpy as np

    from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
    from seg_perception.model.base import CPU
    from seg_perception.model.description import find_description, load_description
    from seg_perception.model.runtimes.onnx import OnnxRuntime

    description = find_description(onnx_model, None)
    assert description is not None
    spec = load_description(description)
    rgb = np.random.default_rng(3).integers(0, 256, (60, 80, 3), np.uint8)
    options = SegmentationOptions(want_color=True, want_overlay=True)
    arrays, tensors = (SegmentationPipeline(OnnxRuntime(onnx_model, spec, CPU, array_io=array_io), "torch")(rgb, options)
                       for array_io in (True, False))
    for name in ("labels", "confidence", "color", "overlay"):
        np.testing.assert_array_equal(getattr(arrays, name), getattr(tensors, name))
