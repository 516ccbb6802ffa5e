#!/usr/bin/env python3
"""screenshot-text.py: checks that a PNG screenshot really shows drawn text.

Decodes the PNG with the standard library only (zlib inflates IDAT), takes
the most common colour as the background, and in the given area counts the
"ink" pixels (far from the background) and the text lines (runs of rows with
ink). --expect-empty passes when the area has no ink; --expect-lines N when
it has exactly N text lines and enough ink for them.

  screenshot-text.py shot.png --area X,Y,W,H (--expect-empty | --expect-lines N)
"""
import argparse
import collections
import struct
import sys
import zlib

INK_DISTANCE = 64          # per channel; anti-aliased glyph edges fall below this
MIN_INK_PER_LINE = 40      # a short word in a 14 px font has a few hundred ink pixels


class BadPng(Exception):
    pass


def read_png(path):
    """-> (width, height, rows), rows a list of bytes objects, 3 or 4 bytes a pixel."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise BadPng("not a PNG file")
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise BadPng("truncated chunk %r" % kind)
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body):
            raise BadPng("bad CRC in chunk %r" % kind)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise BadPng("no IHDR or IDAT chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace != 0:
        raise BadPng("only 8-bit RGB/RGBA, non-interlaced PNGs are handled (depth %d, colour type %d, interlace %d)"
                     % (depth, colour, interlace))
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise BadPng("image data has %d bytes, %d expected" % (len(raw), height * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif kind != 0:
            raise BadPng("unknown filter %d in row %d" % (kind, y))
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def measure(width, height, bpp, rows, area):
    """-> (ink pixels in area, text lines in area, background colour)."""
    counts = collections.Counter()
    for row in rows:
        counts.update(row[i:i + 3] for i in range(0, len(row), bpp))
    background = counts.most_common(1)[0][0]
    x, y, w, h = area
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width or y + h > height:
        raise BadPng("area %r is not inside the %dx%d image" % (area, width, height))
    ink, lines, in_line = 0, 0, False
    for row in rows[y:y + h]:
        row_ink = 0
        for i in range(x * bpp, (x + w) * bpp, bpp):
            if max(abs(row[i + c] - background[c]) for c in range(3)) > INK_DISTANCE:
                row_ink += 1
        ink += row_ink
        if row_ink and not in_line:
            lines += 1
        in_line = row_ink > 0
    return ink, lines, tuple(background)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("png")
    parser.add_argument("--area", required=True, help="X,Y,W,H in pixels")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--expect-empty", action="store_true")
    group.add_argument("--expect-lines", type=int)
    args = parser.parse_args()
    try:
        area = tuple(int(v) for v in args.area.split(","))
        if len(area) != 4:
            raise ValueError
    except ValueError:
        parser.error("--area takes four integers X,Y,W,H")
    try:
        width, height, bpp, rows = read_png(args.png)
        ink, lines, background = measure(width, height, bpp, rows, area)
    except (OSError, BadPng, zlib.error) as e:
        print("%s: %s" % (args.png, e))
        return 1
    print("%s: %dx%d, background %s; area %s: %d ink pixels, %d text lines"
          % (args.png, width, height, background, args.area, ink, lines))
    if args.expect_empty:
        ok = ink == 0
    else:
        ok = lines == args.expect_lines and ink >= MIN_INK_PER_LINE * lines
    if not ok:
        want = "no ink" if args.expect_empty else "%d text lines" % args.expect_lines
        print("%s: FAILED: expected %s" % (args.png, want))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
