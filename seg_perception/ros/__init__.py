"""The only users of rclpy: the node and what it wires (parameters, QoS, topics, threads).

`node` (the lifecycle node: wiring only), `worker` (the engine thread), `cameras` (per-camera
subscriptions and slots), `outputs` (publishers and the per-frame CDR messages), `parameters`,
`qos`, `diagnostics`, `bond`, `webview` (the live view in a browser), `tf` (camera poses for
ground projection: the parameter or TF). Every decision lives in `live`/`engine`/`web`; this
package turns messages into their calls and their results into messages.

May import: rclpy and message packages, `wire`, `model`, `engine`, `live`, `web`. Never `offline`,
`deploy` or `apps`.
"""
