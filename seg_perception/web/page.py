"""The page at `/`: every camera's overlay side by side, the class legend, and a status line
refreshed from /status.json. Self-contained (inline style and script, system fonts): a robot on
a closed network has no CDN. Names that came from a model file are escaped, and the script only
ever sets `textContent`.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from ..model.labels import ClassMap

DEFAULT_CAMERA = "default"
"""How the URLs name the camera with the plain topic names ('')."""


def camera_id(name: str) -> str:
    return name or DEFAULT_CAMERA


@dataclass(frozen=True)
class ViewInfo:
    """What the page shows besides live numbers: fixed from configure to cleanup."""

    model: str
    cameras: list[str]
    """Camera names as the node has them ('' = the unnamed one)."""
    classes: list[tuple[int, str, tuple[int, int, int]]] = field(default_factory=list)
    """(id, name, RGB colour) of every class, as in the class map."""

    @classmethod
    def from_class_map(cls, model: str, cameras: list[str], class_map: ClassMap) -> ViewInfo:
        return cls(model, list(cameras), [(c.id, c.name, c.color) for c in class_map.classes])

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "cameras": [camera_id(c) for c in self.cameras],
                "classes": [{"id": i, "name": n, "color": list(c)} for i, n, c in self.classes]}


_STYLE = """
body{margin:0;padding:12px;background:#1e1e1e;color:#e8e8e8;font:14px sans-serif}
h1{font-size:18px;margin:0 0 8px}
#views{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure{margin:0;background:#000}
figure img{display:block;max-width:100%}
figcaption{padding:4px 6px;background:#333}
#legend{list-style:none;padding:0;margin:10px 0;display:flex;flex-wrap:wrap;gap:14px}
#legend span{display:inline-block;width:14px;height:14px;margin-right:5px;vertical-align:middle;border:1px solid #888}
#status{font-family:monospace;white-space:pre-wrap}
.ok{color:#7fdc7f}.warn{color:#f0c040}.error{color:#ff6b6b}
"""

_SCRIPT = """
const levels = ["ok", "warn", "error", "stale"];
async function refresh() {
  const line = document.getElementById("status");
  try {
    const reply = await fetch("status.json", {cache: "no-store"});
    const s = await reply.json();
    const seg = (s.diagnostics.status || []).find(x => x.name.endsWith(": segmentation"));
    if (!seg) { line.textContent = "waiting for the first diagnostics"; return; }
    const v = seg.values;
    line.className = levels[seg.level] || "";
    line.textContent = `${seg.message}\\ninput ${v.input_rate_hz} Hz   output ${v.output_rate_hz} Hz   ` +
      `latency p50 ${v.latency_p50_ms} ms   inference ${v.inference_ms} ms   device ${v.device}`;
  } catch (e) {
    line.className = "error";
    line.textContent = "no answer from the node";
  }
}
refresh();
setInterval(refresh, 1000);
"""


def render(info: ViewInfo) -> str:
    esc = html.escape
    views = "".join(
        f'<figure><img src="stream/{esc(camera_id(c))}.mjpg" alt="{esc(camera_id(c))}" '
        f'data-camera="{esc(camera_id(c))}"><figcaption>{esc(camera_id(c))}</figcaption></figure>'
        for c in info.cameras)
    legend = "".join(
        f'<li><span style="background:rgb({r},{g},{b})"></span>{esc(name)}</li>'
        for _, name, (r, g, b) in info.classes)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>seg_perception: {esc(info.model)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>seg_perception &middot; model <span id=\"model\">{esc(info.model)}</span></h1>"
        f"<div id=\"views\">{views}</div><ul id=\"legend\">{legend}</ul>"
        "<div id=\"status\">waiting for the first diagnostics</div>"
        f"<script>{_SCRIPT}</script></body></html>\n")


def status_document(info: ViewInfo, diagnostics: dict[str, Any] | None, web: dict[str, Any]) -> bytes:
    """/status.json: the last /diagnostics the node published, what the page shows, and the
    web server's own counters."""
    doc = info.as_json()
    doc["diagnostics"] = diagnostics or {"stamp": None, "status": []}
    doc["web"] = web
    return json.dumps(doc, separators=(",", ":")).encode()
