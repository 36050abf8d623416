"""``torch.compile`` for inference: when it pays and how the toolkit applies it.

Inductor with weight freezing folds the weights into constants (prepacked for oneDNN on the CPU) and fuses
LayerNorm, GELU and residual passes into the GEMMs around them. Measured on Hiera-B 16x224 (2-core Xeon with
AMX, batch 1, ``benchmarks/README.md``): 1.15x on an fp32 forward and 1.2-1.35x on a bf16 one, after about
30 s of compiling per input shape. It pays on a dataset (testing, feature extraction), not on one clip, so
it is opt-in: ``TEST.COMPILE True`` for testing, ``--compile`` for ``tools/extract_features.py``.
"""
from __future__ import annotations

from typing import Callable

import torch

#: What the tools and the log say when they compile.
COMPILE_NOTICE = "torch.compile with frozen weights; the first batch of each shape compiles"


def compile_for_inference(function: Callable) -> Callable:
    """``torch.compile(function)`` with inductor's weight freezing, for a model (or its
    ``forward_features``) that only runs under ``no_grad`` / ``inference_mode`` with fixed weights.

    Compiling happens at the first call and again for each new input shape (a last, smaller batch once).
    """
    return torch.compile(function, options={"freezing": True})
