"""Test data made with the standard library: small PNGs in two visibly different classes, and a tar.gz of them."""

from __future__ import annotations

import io
import struct
import tarfile
import zlib

SIDE = 16


def png(seed: int, cls: int) -> bytes:
    """A SIDE x SIDE RGB PNG whose pixels follow the seed and the class."""
    pixels = bytes((i * (7 + seed) + cls * 128 + ((i >> 4) % 2) * cls * 90) % 256 for i in range(SIDE * SIDE * 3))
    rows = b"".join(b"\x00" + pixels[y * SIDE * 3 : (y + 1) * SIDE * 3] for y in range(SIDE))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def photos_tar_gz(count: int = 64) -> bytes:
    """An ImageFolder tree (photos/cat, photos/dog) as a tar.gz."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for i in range(count):
            data = png(i, i % 2)
            info = tarfile.TarInfo(f"photos/{'dog' if i % 2 else 'cat'}/{i}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
