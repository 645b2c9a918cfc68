"""Hostile inputs for the reliability tests and benchmarks: built, not downloaded.

Each builder makes the smallest real payload that reproduces one fault seen on robots: a
decompression bomb, a JPEG damaged in the middle, camera calibrations that are not finite.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import cv2
import numpy as np


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk: length, type, body and its CRC (or `crc`, to damage it)."""
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_with_noisy_chunks(rgb: np.ndarray) -> bytes:
    """``rgb`` as a PNG that libpng warns about on every decode without a damaged pixel: a tEXt
    chunk with a wrong CRC and an iCCP chunk whose profile is not one ("iCCP: ..."), both
    ancillary, placed after IHDR."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("cv2.imencode failed")
    data = encoded.tobytes()
    after_ihdr = 8 + 12 + 13
    noisy = (png_chunk(b"tEXt", b"Comment\x00from a camera", crc=12345)
             + png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"not an ICC profile")))
    return data[:after_ihdr] + noisy + data[after_ihdr:]


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of ``width`` x ``height`` black pixels.

    1 bit per pixel keeps the raw stream at width*height/8 bytes, so a 20000x20000 bomb is
    built in ~0.1 s and is ~48 KB, while a decoder asked for color allocates width*height*3.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    parts = [packer.compress(row) for _ in range(height)]
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts))
            + png_chunk(b"IEND", b""))


def corrupt_jpeg(rgb: np.ndarray, quality: int = 90, seed: int = 0, span: int = 200) -> bytes:
    """``rgb`` as a JPEG whose entropy-coded middle is overwritten by ``span`` random bytes.

    Markers and tables stay intact and cv2.imdecode still returns an image (with garbage
    blocks from the damage on); libjpeg warns "Corrupt JPEG data" for such a stream.
    """
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("cv2.imencode failed")
    data = bytearray(encoded.tobytes())
    middle = len(data) // 2
    data[middle:middle + span] = np.random.default_rng(seed).integers(0, 256, span, dtype=np.uint8).tobytes()
    return bytes(data)


# Calibrations a broken driver or a bad YAML file produces: (name, K).
BAD_K: dict[str, list[float]] = {
    "nan_center": [500.0, 0.0, float("nan"), 0.0, 500.0, 240.0, 0.0, 0.0, 1.0],
    "huge_center": [500.0, 0.0, 1e30, 0.0, 500.0, 1e30, 0.0, 0.0, 1.0],
    "inf_focal": [float("inf"), 0.0, 320.0, 0.0, float("inf"), 240.0, 0.0, 0.0, 1.0],
    "zero_focal": [0.0] * 9,
    "negative_focal": [-500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0],
}


def tiff(width: int, height: int, extra_tags: Sequence[tuple[int, int, int]] = (), data: bytes | None = None,
         deflate: bool = False) -> bytes:
    """A little-endian, uncompressed 8-bit grayscale TIFF of ``width`` x ``height`` black pixels;
    ``extra_tags`` (tag, type, value) are added to its one IFD, in order, after the real ones.

    With ``extra_tags`` naming ImageWidth/ImageLength again, the file says two sizes: libtiff
    takes the first, a reader that keeps the last sees another. With thousands of unknown tags
    it is a valid TIFF that makes libtiff warn once per tag on every decode. ``deflate`` stores
    the pixels zlib-compressed (a 20000x15000 image in ~300 KB).
    """
    pixels = data if data is not None else bytes(width * height)
    if deflate:
        pixels = zlib.compress(pixels, 9)
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8 if deflate else 1), (262, 3, 1),
            (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(pixels)),
            *extra_tags]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(tags) + 4
    data_offset = ifd_offset + ifd_size
    entries = []
    for tag, kind, value in tags:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<H", value) + b"\x00\x00" if kind == 3 else struct.pack("<I", value)
        entries.append(struct.pack("<HHI", tag, kind, 1) + packed)
    return (b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(tags)) + b"".join(entries)
            + b"\x00\x00\x00\x00" + pixels)


class SilentServer:
    """A TCP server on localhost that accepts every connection and never answers: what a hung
    inference server looks like to a gRPC client (each call waits for its deadline)."""

    def __init__(self) -> None:
        import socket
        import threading

        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> SilentServer:
        self._listener.listen(16)
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()
