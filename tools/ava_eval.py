r"""AVA v2.2 frame-level mAP with the official evaluator's flags.

    python tools/ava_eval.py -l ava_action_list_v2.2_for_activitynet_2019.pbtxt \
        -g ava_val_v2.2.csv -d detections.csv -e ava_val_excluded_timestamps_v2.2.csv \
        [--json metrics.json] [--plot per_class_ap.png] [--strict]

Detections whose boxes are outside [0, 1] or inverted are scored as the official evaluator scores them,
with one warning that counts them; --strict refuses them. The folders of --json and --plot are created.
"""
import argparse
import logging
import os
import sys

from iopath.common.file_io import g_pathmgr

from hiera_video.evaluation import AnnotationFormatError, evaluate_ava_files, format_results, write_json


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line flags (-l, -g, -d, -e as in ActivityNet's get_ava_performance.py)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-l", "--labelmap", required=True, help="label map pbtxt (the 60 evaluated classes)")
    parser.add_argument("-g", "--groundtruth", required=True, help="ground-truth CSV, e.g. ava_val_v2.2.csv")
    parser.add_argument("-d", "--detections", required=True, help="detections CSV (8 columns, with scores)")
    parser.add_argument("-e", "--exclusions", default=None, help="excluded timestamps CSV")
    parser.add_argument("--json", default=None, help="write {'mAP', 'per_class', ...} to this JSON file")
    parser.add_argument("--plot", default=None, help="save a per-class AP bar chart PNG (needs matplotlib)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse detections whose box is not 0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1")
    return parser.parse_args(argv)


def _prepare_output(path: str) -> None:
    """Create the folder of an output file before the evaluation, so that a bad path fails early."""
    if g_pathmgr.isdir(path):
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    folder = os.path.dirname(path) or "."
    g_pathmgr.mkdirs(folder)  # quiet when a file is in the way: checked below
    if not g_pathmgr.isdir(folder):
        raise NotADirectoryError(f"cannot create the folder {folder} for {path}: a file of that name exists")


def _write_outputs(result, args: argparse.Namespace) -> None:
    """Write the JSON and the chart asked for."""
    if args.json:
        write_json(result, args.json)
    if args.plot:
        from hiera_video.evaluation.plots import save_per_class_ap_chart

        save_per_class_ap_chart(result, args.plot)


def main(argv=None) -> int:
    """Evaluate, print per-class AP and mAP, optionally write JSON and the chart."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = parse_args(argv)
    try:
        for path in filter(None, (args.json, args.plot)):
            _prepare_output(path)
        result = evaluate_ava_files(args.labelmap, args.groundtruth, args.detections, args.exclusions,
                                    strict_boxes=args.strict)
    except (AnnotationFormatError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_results(result))
    try:
        _write_outputs(result, args)
    except (ImportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
