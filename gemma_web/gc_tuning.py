"""Keep Python's cyclic garbage collector out of the token stream's way.

A long-lived process (the ASGI server, an inference worker) holds hundreds of thousands of
objects from its imports and its loaded model that never become garbage, and each full
collection walks them all: pauses of 40-50 ms were measured in the stream's delivery tail.
After warm-up those objects are moved out of the collector's sight (`gc.freeze`) and
collections of the youngest generation run less often; garbage is still collected.
"""

from __future__ import annotations

import gc

# Allocations before a young collection (CPython's default is 700): fewer, equally small.
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
