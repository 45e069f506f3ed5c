"""The frame counter stamped into every video frame, for glass-to-glass latency.

Each frame carries its counter as a barcode in the top-left corner: `COUNTER_BITS` square cells of
`STAMP_CELL` pixels in the top row, most significant bit first, white for 1 and black for 0 (8-pixel
cells sit on the codec's block grid and survive compression). The page reads it back from the
decoded video (web_client/frame_stamp.js, the same layout) to measure glass-to-glass latency.
"""

from __future__ import annotations

import numpy as np

COUNTER_BITS = 32
STAMP_CELL = 8  # pixels; the layout web_client/frame_stamp.js reads: {x: 0, y: 0, cell: 8, bits: 32}


def stamp_counter(image: np.ndarray, counter: int) -> None:
    """Writes `counter` (mod 2**COUNTER_BITS) as a barcode into the top-left corner of `image` (H, W, 3) uint8."""
    c = STAMP_CELL
    bits = (counter % (1 << COUNTER_BITS)) >> np.arange(COUNTER_BITS - 1, -1, -1) & 1
    strip = np.repeat(np.where(bits, 255, 0).astype(np.uint8), c)
    image[:c, : COUNTER_BITS * c] = strip[None, :, None]


def read_counter(image: np.ndarray) -> int:
    """The counter stamped into a decoded frame (H, W, 3) uint8 (or (H, W) luma)."""
    c = STAMP_CELL
    luma = image if image.ndim == 2 else image.astype(np.float32).mean(axis=2)
    centres = luma[c // 2, [i * c + c // 2 for i in range(COUNTER_BITS)]]
    return int("".join("1" if v > 127 else "0" for v in centres), 2)
