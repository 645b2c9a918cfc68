"""Messages as bytes and arrays: what crosses the wire, and nothing about what a frame means.

CDR reading and writing of the sensor_msgs types the node uses (one typestore, `cdr`), image
encodings and decoding with their size limits (`images`, `image_headers`), CameraInfo checks and
scaling (`calibration`), PointCloud2 layouts (`pointcloud2`), text made safe for a log line or a
message (`text`, `errors`).

May import: numpy, OpenCV, rosbags (the typestore), simplejpeg, the standard library. Never
rclpy or a message package, and nothing else of seg_perception: every other package builds on
this one.
"""
