"""Models made ready for somewhere else: `export` (a Hugging Face or PyTorch model to ONNX or
TorchScript plus its description) and `triton_repo` (a model repository for NVIDIA Triton).

May import: `wire`, `model`, `models`, `engine`, torch and the exporters' libraries (lazily).
Never rclpy, nor `live`, `offline`, `ros` or `apps`.
"""
