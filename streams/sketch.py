"""A mergeable quantile sketch with bounded relative error (the DDSketch bucket scheme).

Values are counted in logarithmic buckets ``gamma**(i-1) < x <= gamma**i`` with
``gamma = (1 + a) / (1 - a)``; answering with a bucket's midpoint keeps every quantile within
relative error ``a`` of a true sample value. Sketches merge by adding bucket counts, so
per-partition partial windows combine exactly. The state is a plain dict (JSON-friendly).
"""

from __future__ import annotations

import math
from typing import Any

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_POSITIVE = 1e-9


class Sketch:
    __slots__ = ("bins", "count", "zeros")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zeros = 0
        self.count = 0

    def add(self, value: float, n: int = 1) -> None:
        self.count += n
        if value <= _MIN_POSITIVE:
            self.zeros += n
            return
        key = math.ceil(math.log(value) / _LOG_GAMMA)
        self.bins[key] = self.bins.get(key, 0) + n

    def merge(self, other: Sketch) -> None:
        self.count += other.count
        self.zeros += other.zeros
        for key, n in other.bins.items():
            self.bins[key] = self.bins.get(key, 0) + n

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) using the lower rank ``q * (count - 1)``; None when empty."""
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen > rank:
                return 2 * _GAMMA**key / (_GAMMA + 1)
        return 2 * _GAMMA ** max(self.bins) / (_GAMMA + 1)

    def to_dict(self) -> dict[str, Any]:
        return {"b": {str(k): v for k, v in self.bins.items()}, "z": self.zeros, "n": self.count}

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Sketch:
        sketch = cls()
        if raw:
            sketch.bins = {int(k): int(v) for k, v in raw["b"].items()}
            sketch.zeros = int(raw["z"])
            sketch.count = int(raw["n"])
        return sketch
