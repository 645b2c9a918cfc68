"""The live view in a browser, for robots without a desktop: a small HTTP server of the
standard library that serves a page with every camera's overlay, MJPEG streams, PNG snapshots
and the node's status as JSON.

- feed:   per camera the newest overlay (latest wins, copied by the engine only while someone
          watches and at most at the stream rate) and its JPEG, encoded once for every viewer
- limits: how many connections, how fast a client may connect, request size and time limits
- page:   the HTML page (no external scripts or fonts) and the status document
- server: the routes, on threads of their own; nothing here runs on the executor or engine thread

May import: `wire`, `model`, `live`, the standard library, numpy, OpenCV, simplejpeg.
Never rclpy, nor `engine`, `offline`, `deploy`, `ros` or `apps`.
"""
