#!/usr/bin/env python3
"""Writes pillow-reference.json: Pillow's own grids and block maps for test images.

usage: make_pillow_reference.py > pillow-reference.json   (needs `pip install pillow`)

The images are drawn from a formula in integer arithmetic that the Rust test
(tests/pillow_reference.rs) repeats exactly, so only Pillow's answers are stored:

- grids: `Image.resize((n, n), BILINEAR)` of each image, as hex of Pillow's bytes
  (RGBA is resized premultiplied and un-premultiplied after, as Pillow does);
- block maps: for a row `length` pixels wide enlarged from `cells` cells with
  `resize(..., NEAREST)`, the first pixel of every cell (and `length` last), which
  is what `BlockMap` stores.
"""
import json
import sys

import PIL
from PIL import Image

IMAGES = [
    # name, mode, width, height, seed, grid sizes
    ("rgba-150x100", "RGBA", 150, 100, 0x9E3779B9, [8, 16, 32]),
    ("rgb-37x23", "RGB", 37, 23, 0x2545F491, [8, 16, 64]),
]

BLOCK_MAPS = [(length, cells) for length in (23, 37, 150, 1200, 4032) for cells in (8, 16, 32, 48, 64)]


def pattern(width, height, seed):
    """RGBA bytes: red across, green down, blue noisy, alpha in three bands."""
    state = seed
    out = bytearray()
    for y in range(height):
        for x in range(width):
            state ^= (state << 13) & 0xFFFFFFFF
            state ^= state >> 17
            state ^= (state << 5) & 0xFFFFFFFF
            noise = state >> 24
            red = x * 255 // (width - 1)
            green = y * 255 // (height - 1)
            blue = (noise + 5 * x + 3 * y) % 256
            if 3 * x < width:
                alpha = 255
            elif 3 * x < 2 * width:
                alpha = noise
            elif 2 * y < height:
                alpha = 0
            else:
                alpha = 128
            out += bytes((red, green, blue, alpha))
    return bytes(out)


def block_starts(length, cells):
    strip = Image.frombytes("L", (cells, 1), bytes(range(cells)))
    picks = list(strip.resize((length, 1), Image.NEAREST).tobytes())
    starts = []
    for cell in range(cells + 1):
        first = next((x for x, pick in enumerate(picks) if pick >= cell), length)
        starts.append(first)
    return starts


def main():
    images = []
    for name, mode, width, height, seed, sizes in IMAGES:
        image = Image.frombytes("RGBA", (width, height), pattern(width, height, seed))
        if mode != "RGBA":
            image = image.convert(mode)
        grids = {str(n): image.resize((n, n), Image.BILINEAR).tobytes().hex() for n in sizes}
        images.append(
            {"name": name, "mode": mode, "width": width, "height": height, "seed": seed, "grids": grids}
        )
    block_maps = [
        {"length": length, "cells": cells, "starts": block_starts(length, cells)}
        for length, cells in BLOCK_MAPS
    ]
    json.dump(
        {"pillow_version": PIL.__version__, "images": images, "block_maps": block_maps},
        sys.stdout,
        separators=(",", ":"),
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
