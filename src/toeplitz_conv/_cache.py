"""The machine's cache sizes, read once (Linux sysfs), for sizing blocks of work."""

from __future__ import annotations

import os

__all__ = ["L2_BYTES", "cache_bytes"]


def cache_bytes(level: int = 2, default: int = 1 << 20) -> int:
    """Size of one core's data cache of `level` (Linux sysfs), else `default`."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            path = os.path.join(base, entry)
            with open(os.path.join(path, "level")) as fh:
                if int(fh.read()) != level:
                    continue
            with open(os.path.join(path, "type")) as fh:
                if fh.read().strip() == "Instruction":
                    continue
            with open(os.path.join(path, "size")) as fh:
                text = fh.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
            return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return default


L2_BYTES = cache_bytes(2)  # one core's L2 (1 MB when unknown)
