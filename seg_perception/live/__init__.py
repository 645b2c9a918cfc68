"""The running node's policy, without ROS: the parameter table and its checks, rates and
counters, health verdicts, latest-wins slots and stamp pairing.

Everything here is decided from plain values, so `ros/` only wires it to rclpy and the tests
drive it with a fake clock. May import: `wire`, `model`, `engine`, the standard library, numpy.
Never rclpy, nor `offline`, `deploy`, `ros` or `apps`.
"""
