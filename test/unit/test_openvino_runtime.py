"""The openvino runtime (model/runtimes/openvino.py) and the `runtime` choice of load_model.

openvino is an optional dependency (requirements-openvino.txt, no rosdep key): where it is
absent the OpenVINO tests skip and say so; the choice-of-runtime errors are checked anyway.
Built-ins are exported to ONNX once per test module into a temporary cache folder."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from devtools.harness import photo
from seg_perception.engine.pipeline import SegmentationPipeline
from seg_perception.model import load_model
from seg_perception.model.base import ModelLoadError
from seg_perception.model.builtin import builtin_onnx
from seg_perception.model.runtimes.openvino import openvino_available

NO_OPENVINO = openvino_available()
needs_openvino = pytest.mark.skipif(NO_OPENVINO is not None, reason=str(NO_OPENVINO))


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("seg_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEG_PERCEPTION_CACHE", str(folder))
        yield folder


def test_builtin_onnx_is_exported_once_and_keyed_on_the_network(cache: Path) -> None:
    first = builtin_onnx("selfie")
    assert first.parent == cache / "builtin" and first.name.startswith("selfie-")
    stamp = first.stat().st_mtime_ns
    assert builtin_onnx("mediapipe_selfie") == first  # aliases share the export
    assert first.stat().st_mtime_ns == stamp  # found, not re-exported
    assert not list(first.parent.glob("*.partial"))


def test_unknown_runtime_and_impossible_pairs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="runtime 'tensorrt' is not one of auto, torch, onnxruntime, openvino"):
        load_model("selfie", "cpu", runtime="tensorrt")
    onnx_path = builtin_onnx("selfie")
    (tmp_path / "m.onnx").write_bytes(onnx_path.read_bytes())
    (tmp_path / "m.yaml").write_text("input: {width: 256, height: 256}\noutput: sigmoid\n"
                                     "classes: [background, person]\n")
    with pytest.raises(ModelLoadError, match="runtime 'torch' runs built-ins and TorchScript files"):
        load_model(str(tmp_path / "m.onnx"), "cpu", runtime="torch")
    with pytest.raises(ModelLoadError, match="openvino runtime runs on the CPU, not on device 'cuda'"):
        load_model(str(tmp_path / "m.onnx"), "cuda", runtime="openvino")
    (tmp_path / "m.xml").write_text("<net/>")
    with pytest.raises(ModelLoadError, match="OpenVINO IR .* runs on OpenVINO only"):
        load_model(str(tmp_path / "m.xml"), "cpu", runtime="onnxruntime")
    with pytest.raises(ModelLoadError, match="triton:// model runs on the server"):
        load_model("triton://localhost:8001/selfie", "cpu", runtime="openvino")


@needs_openvino
def test_openvino_runs_a_builtin_like_torch_does() -> None:
    """Same photo, same pipeline: the OpenVINO mask is the torch mask (up to float rounding)."""
    rgb = photo(320, 240)
    masks = {}
    for engine in ("torch", "openvino"):
        runtime = load_model("selfie", "cpu", runtime=engine, cpu_threads=1)
        assert runtime.array_io == (engine == "openvino")
        pipeline = SegmentationPipeline(runtime)
        masks[engine] = pipeline(rgb).labels.copy()
        pipeline.close()
    assert masks["torch"].any(), "the photo has a person: an empty mask proves nothing"
    differ = float(np.mean(masks["torch"] != masks["openvino"]))
    assert differ < 0.002, f"{differ:.2%} of the pixels differ between torch and OpenVINO"


@needs_openvino
def test_cpu_threads_is_openvinos_inference_thread_count() -> None:
    for threads in (1, 2):
        runtime = load_model("selfie", "cpu", runtime="openvino", cpu_threads=threads)
        assert runtime.cpu_threads == threads
        compiled = runtime._compiled  # type: ignore[attr-defined]
        assert compiled.get_property("INFERENCE_NUM_THREADS") == threads
        # f32, not the CPU plugin's bf16 default on AVX512-BF16 / AMX machines
        assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
        runtime.close()


@needs_openvino
def test_a_damaged_model_file_is_a_load_error(tmp_path: Path) -> None:
    good = builtin_onnx("selfie").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 3])
    (tmp_path / "cut.yaml").write_text("input: {width: 256, height: 256}\noutput: sigmoid\n"
                                       "classes: [background, person]\n")
    with pytest.raises(ModelLoadError, match="OpenVINO cannot read it"):
        load_model(str(tmp_path / "cut.onnx"), "cpu", runtime="openvino")
    (tmp_path / "wrong.onnx").write_bytes(good)
    (tmp_path / "wrong.yaml").write_text("input: {width: 320, height: 256}\noutput: sigmoid\n"
                                         "classes: [background, person]\n")
    with pytest.raises(ModelLoadError, match="fixed at 256x256 .* description says 320x256"):
        load_model(str(tmp_path / "wrong.onnx"), "cpu", runtime="openvino")


@needs_openvino
def test_a_builtin_on_openvino_never_imports_torch(cache: Path) -> None:
    builtin_onnx("selfie")  # the export needs torch; it is made here, once
    code = textwrap.dedent('''
        import sys
        import numpy as np
        from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
        from seg_perception.model import load_model, warm_up

        runtime = load_model("selfie", "auto", runtime="openvino", cpu_threads=1)
        warm_up(runtime, 2)
        pipeline = SegmentationPipeline(runtime, reuse_buffers=True)
        rgb = np.random.default_rng(0).integers(0, 256, (97, 131, 3), np.uint8)
        result = pipeline(rgb, SegmentationOptions(want_color=True, want_overlay=True))
        assert result.labels.shape == (97, 131)
        print("torch modules:", sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))[:3])
    ''')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "SEG_PERCEPTION_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch modules: []" in result.stdout, result.stdout


@needs_openvino
def test_segment_offline_runs_on_the_runtime_it_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    from seg_perception.apps import segment_offline

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.png"), cv2.cvtColor(photo(160, 120), cv2.COLOR_RGB2BGR))
    masks = {}
    for engine in ("torch", "openvino"):
        out = tmp_path / engine
        code = segment_offline.main(["segment_offline", str(photos), "--out", str(out), "--runtime", engine])
        assert code == 0, capsys.readouterr().err
        masks[engine] = cv2.imread(str(next(out.rglob("astronaut*.png"))), cv2.IMREAD_UNCHANGED)
    assert masks["torch"].shape == (120, 160) and masks["torch"].any()
    assert float(np.mean(masks["torch"] != masks["openvino"])) < 0.01
    with pytest.raises(SystemExit):
        segment_offline.main(["segment_offline", str(photos), "--out", str(tmp_path / "x"), "--runtime", "tvm"])
