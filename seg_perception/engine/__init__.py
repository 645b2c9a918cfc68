"""One frame (+ depth + calibration) to every output array.

Pre-processing, the forward through a `model` runtime, post-processing (labels, confidence,
resizing back), colour masks and overlays, depth projection and clouds, ground projection
(camera-only obstacles: `ground`), batching of frames from
several cameras, and `frame.FrameProcessor`, which ties them together for one frame or a batch.

May import: `wire`, `model`, `models`, numpy, OpenCV, torch (only where a torch runtime is used).
Never rclpy, nor `live`, `offline`, `deploy`, `ros` or `apps`.
"""
