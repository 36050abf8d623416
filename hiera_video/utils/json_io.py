"""Strict JSON: every file and line the toolkit writes parses with any JSON reader (no bare NaN / Infinity)."""
from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, inf) replaced by None, in nested dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite_or_none` (``value``): standard JSON, an undefined number as null."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)
