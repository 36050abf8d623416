"""AVA v2.2 frame-level mAP with the official evaluator's flags.

    python tools/ava_eval.py -l ava_action_list_v2.2_for_activitynet_2019.pbtxt \
        -g ava_val_v2.2.csv -d detections.csv -e ava_val_excluded_timestamps_v2.2.csv \
        [--json metrics.json] [--plot per_class_ap.png]
"""
import argparse
import logging
import sys

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
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Evaluate, print per-class AP and mAP, optionally write JSON and the chart."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = parse_args(argv)
    try:
        result = evaluate_ava_files(args.labelmap, args.groundtruth, args.detections, args.exclusions)
    except (AnnotationFormatError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_results(result))
    if args.json:
        write_json(result, args.json)
    if args.plot:
        from hiera_video.evaluation.plots import save_per_class_ap_chart

        try:
            save_per_class_ap_chart(result, args.plot)
        except ImportError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
