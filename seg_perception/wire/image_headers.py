"""Image size from a compressed payload's header, read before anything is decoded.

A 48 KB PNG can declare 20000x20000 pixels; decoding it costs 1.2 GB and seconds. The size
is in the first bytes of every format image_transport carries (PNG IHDR, JPEG SOF, TIFF's
first IFD, BMP's info header), so reading it costs microseconds and lets the caller refuse
the image before a decoder allocates anything. Formats this module cannot read return
None: the caller must then refuse to decode, not guess.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

__all__ = ["HeaderRefused", "ImageHeader", "read_header"]


@dataclass(frozen=True)
class ImageHeader:
    codec: str
    """'png', 'jpeg', 'tiff', 'bmp' or 'webp'."""
    width: int
    height: int
    channels: int
    """Samples per pixel as stored (a palette PNG counts 3: it decodes to RGB)."""
    bytes_per_sample: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """Bytes a decoder holds for the full image: at least 3 channels, since we ask for color."""
        return self.pixels * max(self.channels, 3) * self.bytes_per_sample


_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# PNG color type -> samples per pixel (3 = palette, expanded to RGB on decode).
_PNG_CHANNELS: Final = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic): every
# SOFn except C4 (DHT), C8 (reserved) and CC (DAC).
_JPEG_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI, EOI: no length
_JPEG_SOS: Final = 0xDA


def read_header(data: bytes | memoryview) -> ImageHeader | None:
    """The header of a PNG, JPEG, TIFF, BMP or WebP payload; None for anything else or a cut header.

    Raises:
        HeaderRefused: a readable header that decoders would read otherwise than we do.
    """
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    head = bytes(buf[:8])
    try:
        if head == _PNG_SIGNATURE:
            return _png(buf)
        if head[:2] == b"\xff\xd8":
            return _jpeg(buf)
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(buf)
        if head[:2] == b"BM":
            return _bmp(buf)
        if head[:4] == b"RIFF" and bytes(buf[8:12]) == b"WEBP":
            return _webp(buf)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _png(buf: bytes | memoryview) -> ImageHeader | None:
    # The first chunk must be IHDR: length 13, type, width, height, bit depth, color type.
    length, kind, width, height, depth, color = struct.unpack(">I4sIIBB", bytes(buf[8:26]))
    if kind != b"IHDR" or length != 13 or color not in _PNG_CHANNELS:
        return None
    return ImageHeader("png", width, height, _PNG_CHANNELS[color], 2 if depth == 16 else 1)


def _jpeg(buf: bytes | memoryview) -> ImageHeader | None:
    pos, end = 2, len(buf)
    while pos + 4 <= end:
        if buf[pos] != 0xFF:
            return None  # segments must follow each other back to back
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", bytes(buf[pos + 2:pos + 4]))
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            precision, height, width, components = struct.unpack(">BHHB", bytes(buf[pos + 4:pos + 10]))
            if height == 0:
                return None  # height given later by a DNL marker: unknown until decoded
            return ImageHeader("jpeg", width, height, components, 2 if precision > 8 else 1)
        if marker == _JPEG_SOS:
            return None  # scan data before any frame header
        pos += 2 + length
    return None


# Tags libtiff reads without a warning (tif_dirinfo.c): baseline, extension and the private
# ones cameras write (XMP, IPTC, Photoshop, EXIF/GPS IFD pointers, ICC). libtiff warns once per
# other tag on every decode, through OpenCV's log and past any throttle of ours.
_TIFF_KNOWN_TAGS: Final = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 269, 270, 271, 272, 273, 274, 277, 278, 279,
    280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291, 292, 293, 296, 297, 301, 305, 306, 315,
    316, 317, 318, 319, 320, 321, 322, 323, 324, 325, 330, 332, 333, 334, 336, 337, 338, 339, 340, 341,
    342, 343, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 700, 33432, 33723,
    34377, 34665, 34675, 34853})
_TIFF_MAX_TAGS: Final = 64
"""An image needs a dozen tags; a camera's EXIF lives in its own IFD (one pointer tag)."""


class HeaderRefused(Exception):  # noqa: N818 - not an error of ours: a header we will not trust
    """A header that is readable but that a decoder would read differently from us, or that would
    make the decoder log on every frame: refuse the image, with this reason."""


def _tiff(buf: bytes | memoryview) -> ImageHeader | None:
    """libtiff reads the first of two entries for one tag (and warns); a reader keeping the last
    would check a size the decoder does not use. So a directory whose tags repeat or are out of
    order (the TIFF rule: ascending), or that holds tags libtiff does not know, is refused."""
    order = "<" if bytes(buf[:2]) == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", bytes(buf[4:8]))
    (count,) = struct.unpack(order + "H", bytes(buf[ifd:ifd + 2]))
    if count > _TIFF_MAX_TAGS:
        raise HeaderRefused(f"TIFF directory of {count} tags (at most {_TIFF_MAX_TAGS} accepted)")
    tags: dict[int, int] = {}
    previous = -1
    for i in range(count):
        entry = bytes(buf[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
        tag, kind, n = struct.unpack(order + "HHI", entry[:8])
        if tag <= previous:
            raise HeaderRefused(f"TIFF tag {tag} {'repeated' if tag == previous else 'out of order'}: "
                                "decoders disagree on which entry counts")
        previous = tag
        if tag not in _TIFF_KNOWN_TAGS:
            raise HeaderRefused(f"TIFF tag {tag} unknown to libtiff (it would warn on every frame)")
        if tag in (256, 257, 258, 277) and n >= 1:
            # SHORT values sit left-justified in the 4-byte field; LONG fill it.
            if kind == 3:
                (tags[tag],) = struct.unpack(order + "H", entry[8:10])
            elif kind == 4:
                (tags[tag],) = struct.unpack(order + "I", entry[8:12])
            if tag == 258 and n > 2:
                # Several BitsPerSample values live elsewhere (an offset): assume the widest.
                tags[tag] = 16
    if 256 not in tags or 257 not in tags:
        return None
    bits = tags.get(258, 8)
    return ImageHeader("tiff", tags[256], tags[257], tags.get(277, 1), max(1, (bits + 7) // 8))


def _bmp(buf: bytes | memoryview) -> ImageHeader | None:
    (info_size,) = struct.unpack("<I", bytes(buf[14:18]))
    if info_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack("<HH", bytes(buf[18:22]))
    else:
        width, height = struct.unpack("<ii", bytes(buf[18:26]))
    # A negative height means rows stored top-down; the size is its magnitude.
    return ImageHeader("bmp", abs(width), abs(height), 4, 1)


def _webp(buf: bytes | memoryview) -> ImageHeader | None:
    # RIFF container; the first chunk says how the size is stored (RFC 9649).
    kind = bytes(buf[12:16])
    if kind == b"VP8 ":  # lossy: start code 9d 01 2a, then 14-bit width and height
        if bytes(buf[23:26]) != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", bytes(buf[26:30]))
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF, 3, 1)
    if kind == b"VP8L":  # lossless: signature 0x2f, then 14 bits width-1 and height-1
        if buf[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", bytes(buf[21:25]))
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4, 1)
    if kind == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        width = int.from_bytes(bytes(buf[24:27]), "little") + 1
        height = int.from_bytes(bytes(buf[27:30]), "little") + 1
        return ImageHeader("webp", width, height, 4, 1)
    return None


# Chunks that decide a PNG's pixels: the rest (text, ICC profiles, gamma, times, ...) OpenCV
# reads but does not apply, and libpng prints a warning on stderr for each one it finds damaged
# or odd ("tEXt: CRC error", "iCCP: known incorrect sRGB profile"), on every frame.
_PNG_PIXEL_CHUNKS: Final = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})


class PngDamaged(ValueError):
    """A chunk the pixels depend on fails its CRC, or the chunk list is cut or malformed."""


def png_pixel_chunks(data: bytes | memoryview) -> bytes | memoryview:
    """The PNG with only the chunks its pixels come from (IHDR, PLTE, tRNS, IDAT, IEND), each
    CRC-checked: what libpng decodes to the same pixels without a warning to print. A PNG that
    holds no other chunk (what OpenCV and image_transport write) comes back as it is, uncopied.

    Raises PngDamaged naming the chunk and byte offset where a kept chunk fails its CRC or
    the chunk list ends before IEND (libpng would print an error and return nothing).
    """
    buf = memoryview(data)
    kept = [buf[:8]]
    dropped = False
    offset = 8
    while True:
        if offset + 12 > len(buf):
            raise PngDamaged(f"the chunk list ends at byte {offset} without an IEND chunk")
        length, kind = struct.unpack(">I4s", buf[offset:offset + 8])
        end = offset + 12 + length
        if end > len(buf):
            raise PngDamaged(f"chunk {kind!r} at byte {offset} says {length} bytes; the image ends first")
        if kind in _PNG_PIXEL_CHUNKS:
            (crc,) = struct.unpack(">I", buf[end - 4:end])
            if zlib.crc32(buf[offset + 4:end - 4]) != crc:
                raise PngDamaged(f"chunk {kind.decode('latin-1')!r} at byte {offset} fails its CRC")
            kept.append(buf[offset:end])
            if kind == b"IEND":
                return b"".join(kept) if dropped else buf[:end]
        else:
            dropped = True
        offset = end
