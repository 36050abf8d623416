"""Every JSON the toolkit writes is standard JSON: an undefined number is null, never a bare NaN."""
import json
import math

from hiera_video.utils.json_io import dumps_strict, finite_or_none


def test_non_finite_numbers_become_null_at_any_depth():
    value = {"top1": math.nan, "per_class": {"a": math.inf, "b": 0.5}, "rows": [1.0, -math.inf, "x"]}
    assert finite_or_none(value) == {"top1": None, "per_class": {"a": None, "b": 0.5}, "rows": [1.0, None, "x"]}
    text = dumps_strict(value)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))["top1"] is None
