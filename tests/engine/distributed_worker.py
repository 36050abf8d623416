"""One engine job on the MovingSquares dataset, for ``torchrun`` in test_distributed.py.

Usage: ``torchrun --nproc_per_node N tests/engine/distributed_worker.py OUTPUT_DIR TEST_SIZE FAILING [KEY VALUE ...]``
with FAILING a comma-separated list of test indices that fail to decode ("" for none).
"""
import sys

from hiera_video.engine import run
from hiera_video.engine import data as engine_data
from tests.engine.fakes import MovingSquares, tiny_cfg


def main() -> None:
    """Route the engine to MovingSquares (no training noise, so runs are comparable) and run the job."""
    output_dir, test_size, failing, *opts = sys.argv[1:]
    failing_indices = tuple(int(i) for i in failing.split(",") if i)

    def build(cfg, split):
        if split == "train":
            return MovingSquares(16, "train", augment=False)
        views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
        return MovingSquares(int(test_size), split, views, failing_indices)

    engine_data._build_dataset = build
    run(tiny_cfg(output_dir, *opts))


if __name__ == "__main__":
    main()
