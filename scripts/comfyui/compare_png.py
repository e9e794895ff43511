#!/usr/bin/env python3
"""PSNR and largest difference of two same-size 8-bit RGB/RGBA PNGs (standard library only, for integration.sh).

    compare_png.py A.png B.png [--max N] [--min-psnr DB]

Prints "W×H PSNR x dB, max difference n"; exits 1 when --max or --min-psnr is not met.
"""
import argparse
import math
import struct
import zlib


def pixels(path):
    data = open(path, "rb").read()
    i, idat = 8, b""
    while i < len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        kind = data[i + 4:i + 8]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", data[i + 8:i + 18])
        elif kind == b"IDAT":
            idat += data[i + 8:i + 8 + n]
        i += 12 + n
    assert depth == 8 and color in (2, 6), f"{path}: only 8-bit RGB/RGBA"
    bpp = 3 if color == 2 else 4
    raw, stride, out, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            up, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if kind == 1: line[x] = (line[x] + a) & 255
            elif kind == 2: line[x] = (line[x] + up) & 255
            elif kind == 3: line[x] = (line[x] + (a + up) // 2) & 255
            elif kind == 4:
                p = a + up - c
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        out += [line[x] for x in range(stride) if bpp == 3 or x % 4 != 3]
        prev = line
    return width, height, out


ap = argparse.ArgumentParser()
ap.add_argument("a"); ap.add_argument("b")
ap.add_argument("--max", type=int); ap.add_argument("--min-psnr", type=float)
args = ap.parse_args()
wa, ha, a = pixels(args.a)
wb, hb, b = pixels(args.b)
if (wa, ha) != (wb, hb):
    print(f"sizes differ: {wa}×{ha} and {wb}×{hb}")
    raise SystemExit(1)
mse = sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)
largest = max(abs(x - y) for x, y in zip(a, b))
psnr = 10 * math.log10(255 ** 2 / mse) if mse else math.inf
print(f"{wa}×{ha} PSNR {psnr:.2f} dB, max difference {largest}")
if (args.max is not None and largest > args.max) or (args.min_psnr is not None and psnr < args.min_psnr):
    raise SystemExit(1)
