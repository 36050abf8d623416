"""Classify video clips with a Hiera checkpoint: top-k labels per video (or per window), JSON, labelled video.

    python tools/predict.py VIDEO [VIDEO ...|DIR] --checkpoint CKPT [--cfg FILE | --model NAME]
        [--labels FILE] [--top-k 5] [--views 5x3] [--window SECONDS [--window-views 1x3]] [--json OUT]
        [--device cpu|cuda] [--output-video OUT.mp4]

See ``python tools/predict.py --help`` and :mod:`hiera_video.inference`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hiera_video.inference.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
