"""AVA frame-mAP on hand-checkable inputs: the official evaluator's protocol, step by step."""
import numpy as np
import pytest

from hiera_video.evaluation import (
    AnnotationFormatError,
    BoxRow,
    compute_precision_recall,
    detection_rows_from_scores,
    evaluate_ava,
    evaluate_ava_files,
    iter_box_rows,
    voc_average_precision,
    write_detections_csv,
)
from hiera_video.evaluation.ava_eval import box_iou, match_detections

LABEL_MAP = {1: "bend/bow", 3: "crouch/kneel", 12: "stand"}
BOX_A = (0.1, 0.1, 0.4, 0.9)
BOX_B = (0.5, 0.2, 0.9, 0.8)


def row(video, second, box, action_id, last=None, line=1):
    """A BoxRow with (x1, y1, x2, y2) ``box``."""
    return BoxRow(line, video, second, *box, action_id, last)


def test_perfect_detections_give_one():
    truth = [row("v", 902, BOX_A, 12, 0), row("v", 902, BOX_B, 1, 1), row("v", 903, BOX_A, 3, 0)]
    detections = [row(r.video_id, r.timestamp, r[3:7], r.action_id, 0.9) for r in truth]
    result = evaluate_ava(LABEL_MAP, truth, detections)
    assert result.mean_ap == 1.0
    assert result.per_class_ap == {"bend/bow": 1.0, "crouch/kneel": 1.0, "stand": 1.0}


def test_no_detections_give_zero():
    truth = [row("v", 902, BOX_A, 12, 0), row("v", 903, BOX_B, 1, 0)]
    result = evaluate_ava(LABEL_MAP, truth, [])
    assert result.mean_ap == 0.0
    assert result.groundtruth_keys_without_detections == ["v,0902", "v,0903"]


def test_known_precision_recall_curve_gives_its_area():
    # 4 ground-truth boxes on 4 keyframes; ranked detections: TP, FP, TP, FP, TP.
    truth = [row("v", 902 + i, BOX_A, 12, 0) for i in range(4)]
    detections = [
        row("v", 902, BOX_A, 12, 0.9),
        row("v", 902, BOX_B, 12, 0.8),
        row("v", 903, BOX_A, 12, 0.7),
        row("v", 903, BOX_B, 12, 0.6),
        row("v", 904, BOX_A, 12, 0.5),
    ]
    # precision 1, 1/2, 2/3, 1/2, 3/5 at recall 1/4, 1/4, 1/2, 1/2, 3/4; envelope 1, 2/3, 3/5.
    expected = 0.25 * 1 + 0.25 * (2 / 3) + 0.25 * 0.6
    assert evaluate_ava(LABEL_MAP, truth, detections).per_class_ap["stand"] == pytest.approx(expected, abs=1e-12)


def test_precision_recall_and_voc_ap_functions():
    precision, recall = compute_precision_recall(
        np.array([0.2, 0.9, 0.5]), np.array([True, True, False]), num_groundtruth=4
    )
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(recall, [0.25, 0.25, 0.5])
    assert voc_average_precision(precision, recall) == pytest.approx(0.25 + 0.25 * 2 / 3)
    assert voc_average_precision(np.zeros(0), np.zeros(0)) == 0.0


def test_second_detection_of_a_matched_box_is_a_false_positive():
    truth = [row("v", 902, BOX_A, 12, 0)]
    detections = [row("v", 902, BOX_A, 12, 0.9), row("v", 902, BOX_A, 12, 0.8)]
    result = evaluate_ava(LABEL_MAP, truth, detections)
    assert result.per_class_ap["stand"] == 1.0  # recall 1 reached at the first detection
    lower_first = [row("v", 902, BOX_A, 12, 0.8), row("v", 902, BOX_B, 12, 0.9)]
    assert evaluate_ava(LABEL_MAP, truth, lower_first).per_class_ap["stand"] == 0.5


def test_detection_goes_to_its_best_box_even_when_that_box_is_taken():
    # Two ground-truth boxes; both detections overlap the first best, the second also overlaps the other
    # box above 0.5 but the official greedy rule scores it a false positive.
    left, right = (0.0, 0.0, 0.4, 1.0), (0.1, 0.0, 0.5, 1.0)
    detection = (0.02, 0.0, 0.42, 1.0)
    assert box_iou(np.array([detection]), np.array([left, right])).min() >= 0.5
    flags = match_detections(np.array([left, detection]), np.array([left, right]))
    assert flags.tolist() == [True, False]


def test_iou_at_exactly_the_threshold_matches():
    # Detection covers half of a box of equal height: IoU = 0.5 exactly.
    truth = np.array([[0.0, 0.0, 1.0, 0.5]])
    detection = np.array([[0.0, 0.0, 1.0, 0.25]])
    assert box_iou(detection, truth)[0, 0] == 0.5
    assert match_detections(detection, truth).tolist() == [True]


def test_only_fifty_highest_scores_per_keyframe_count():
    truth = [row("v", 902, BOX_A, 12, 0)]
    # 50 false positives on class 1 outrank the one true positive of class 12, which is dropped.
    noise = [row("v", 902, BOX_B, 1, 0.5 + i / 1000) for i in range(50)]
    dropped = evaluate_ava(LABEL_MAP, truth, noise + [row("v", 902, BOX_A, 12, 0.1)])
    assert dropped.per_class_ap["stand"] == 0.0
    kept = evaluate_ava(LABEL_MAP, truth, noise[:49] + [row("v", 902, BOX_A, 12, 0.1)])
    assert kept.per_class_ap["stand"] == 1.0


def test_classes_outside_the_label_map_are_ignored_and_classes_without_truth_not_averaged():
    truth = [row("v", 902, BOX_A, 12, 0), row("v", 902, BOX_B, 2, 0)]  # id 2 is not in the map
    detections = [row("v", 902, BOX_A, 12, 0.9), row("v", 902, BOX_B, 2, 0.1)]
    result = evaluate_ava(LABEL_MAP, truth, detections)
    assert result.mean_ap == 1.0
    assert set(result.per_class_ap) == {"stand"}
    assert result.classes_without_groundtruth == ["bend/bow", "crouch/kneel"]


def test_excluded_keyframes_are_dropped_from_truth_and_detections():
    truth = [row("v", 902, BOX_A, 12, 0), row("v", 903, BOX_A, 12, 0)]
    detections = [row("v", 902, BOX_A, 12, 0.9), row("v", 903, BOX_B, 12, 0.95)]
    assert evaluate_ava(LABEL_MAP, truth, detections).per_class_ap["stand"] == 0.25
    result = evaluate_ava(LABEL_MAP, truth, detections, excluded_keys={"v,0903"})
    assert result.per_class_ap["stand"] == 1.0
    assert result.num_groundtruth == {"bend/bow": 0, "crouch/kneel": 0, "stand": 1}


def test_inverted_and_empty_detection_boxes_are_ignored_with_one_warning():
    truth = [row("v", 902, BOX_A, 12, 0)]
    inverted, empty = (0.4, 0.1, 0.1, 0.9), (0.1, 0.1, 0.1, 0.9)
    detections = [row("v", 902, inverted, 12, 0.99, line=1), row("v", 902, empty, 12, 0.98, line=2),
                  row("v", 902, BOX_A, 12, 0.5, line=3)]
    result = evaluate_ava(LABEL_MAP, truth, detections)
    assert result.per_class_ap["stand"] == 1.0  # as false positives they would make it 1/3
    box_warnings = [m for m in result.warnings if "x1 >= x2" in m]
    assert box_warnings == [box_warnings[0]] and box_warnings[0].startswith("detections: 2 detections")
    assert box_warnings[0].endswith(", at detections:1, detections:2")


def test_inverted_detections_take_their_place_among_the_fifty_kept_per_keyframe():
    # The official reader caps a keyframe at 50 rows before the evaluator drops invalid boxes.
    truth = [row("v", 902, BOX_A, 12, 0)]
    inverted = [row("v", 902, (0.4, 0.1, 0.1, 0.9), 1, 0.9) for _ in range(50)]
    result = evaluate_ava(LABEL_MAP, truth, inverted + [row("v", 902, BOX_A, 12, 0.1)])
    assert result.per_class_ap["stand"] == 0.0


def test_detection_boxes_outside_the_unit_square_are_matched_without_clipping():
    truth = [row("v", 902, (0.0, 0.0, 0.2, 1.0), 12, 0)]
    # IoU 0.2 / 0.5 = 0.4 as given; clipped to x1 = 0 it would be 1.0.
    outside = row("v", 902, (-0.3, 0.0, 0.2, 1.0), 12, 0.9, line=4)
    result = evaluate_ava(LABEL_MAP, truth, [outside])
    assert result.per_class_ap["stand"] == 0.0
    assert any("outside [0, 1]" in m and m.endswith("at detections:4") for m in result.warnings)
    slightly = row("v", 902, (0.0, -0.004, 0.2, 1.004), 12, 0.9)
    assert evaluate_ava(LABEL_MAP, truth, [slightly]).per_class_ap["stand"] == 1.0


def test_strict_boxes_refuse_odd_detection_boxes_naming_the_line():
    truth = [row("v", 902, BOX_A, 12, 0)]
    for box in [(0.4, 0.1, 0.1, 0.9), (0.1, 0.1, 0.1, 0.9), (0.1, 0.1, 0.4, 1.001)]:
        with pytest.raises(AnnotationFormatError, match=r"^d\.csv:7: box .* is not 0 <= x1 < x2 <= 1"):
            evaluate_ava(LABEL_MAP, truth, [row("v", 902, box, 12, 0.5, line=7)], detections_source="d.csv",
                         strict_boxes=True)
    assert evaluate_ava(LABEL_MAP, truth, [row("v", 902, BOX_A, 12, 0.5)], strict_boxes=True).mean_ap == 1.0


def test_one_warning_counts_every_odd_box_and_quotes_the_first_lines():
    truth = [row("v", 902, BOX_A, 12, 0)]
    odd = [row("v", 902, (0.1, 0.1, 0.4, 1.01), 12, 0.5, line=10 + i) for i in range(5)]
    warnings = [m for m in evaluate_ava(LABEL_MAP, truth, odd).warnings if "outside [0, 1]" in m]
    assert warnings == ["detections: 5 detections with a box outside [0, 1] or with x1 >= x2 or y1 >= y2, scored "
                        "as the official evaluator scores them (inverted and empty boxes ignored, the others "
                        "matched as given; ava_eval --strict refuses them), first at detections:10, "
                        "detections:11, detections:12"]


def test_scores_outside_the_unit_interval_are_ranked_as_given_with_a_warning():
    truth = [row("v", 902 + i, BOX_A, 12, 0) for i in range(2)]
    probabilities = [row("v", 902, BOX_B, 12, 0.9), row("v", 902, BOX_A, 12, 0.7), row("v", 903, BOX_A, 12, 0.2)]
    logits = [r._replace(last_column=np.log(r.last_column / (1 - r.last_column)), line=i + 1)
              for i, r in enumerate(probabilities)]
    expected = evaluate_ava(LABEL_MAP, truth, probabilities)
    result = evaluate_ava(LABEL_MAP, truth, logits)
    # Either way: a false positive, then both boxes found: precision 2/3 at full recall.
    assert result.per_class_ap == expected.per_class_ap == {"stand": pytest.approx(2 / 3)}
    assert any(m.startswith("detections: 2 scores outside [0, 1]") and m.endswith("at detections:1, detections:3")
               for m in result.warnings)
    assert not any("scores outside" in m for m in expected.warnings)


def test_action_ids_outside_one_to_eighty_are_skipped_with_a_warning():
    truth = [row("v", 902, BOX_A, 12, 0)]
    detections = [row("v", 902, BOX_A, 12, 0.9), row("v", 902, BOX_A, 0, 0.8, line=2), row("v", 902, BOX_A, 2, 0.7)]
    result = evaluate_ava(LABEL_MAP, truth, detections)
    assert result.mean_ap == 1.0
    assert [m for m in result.warnings if "1..80" in m] == [
        "detections: 1 rows with action ids outside 1..80, skipped (ids are 1-based), at detections:2"]


def test_warns_about_an_eighty_class_label_map():
    full_map = {i: f"action {i}" for i in range(1, 81)}
    result = evaluate_ava(full_map, [row("v", 902, BOX_A, 12, 0)], [row("v", 902, BOX_B, 12, 0.5)])
    assert any("60 classes" in message for message in result.warnings)
    assert not any("60 classes" in message for message in evaluate_ava(
        LABEL_MAP, [row("v", 902, BOX_A, 12, 0)], [row("v", 902, BOX_B, 12, 0.5)]).warnings)


def test_warns_when_detections_are_the_groundtruth_boxes():
    truth = [row("v", 902 + i, BOX_A, 12, 0) for i in range(5)]
    on_truth = [row("v", 902 + i, BOX_A, 12, 0.5) for i in range(5)]
    shifted = [row("v", 902 + i, (0.11, 0.1, 0.41, 0.9), 12, 0.5) for i in range(5)]
    assert any("ground-truth boxes" in m for m in evaluate_ava(LABEL_MAP, truth, on_truth).warnings)
    assert not any("ground-truth boxes" in m for m in evaluate_ava(LABEL_MAP, truth, shifted).warnings)


def test_warns_about_duplicates_and_coordinates_outside_the_unit_square():
    truth = [row("v", 902, BOX_A, 12, 0, line=1), row("v", 902, BOX_A, 12, 0, line=2)]
    detections = [row("v", 902, (0.1, 0.1, 1.5, 0.9), 12, 0.5, line=7)]
    warnings = evaluate_ava(LABEL_MAP, truth, detections).warnings
    assert any("ground truth: 1 duplicate rows" in m for m in warnings)
    assert any("outside [0, 1]" in m and m.endswith("at detections:7") for m in warnings)
    truth_outside = [row("v", 902, (0.0, 0.0, 1.004, 0.9), 12, 0, line=3)]
    assert any(m.startswith("ground truth: 1 rows with coordinates outside [0, 1]") and m.endswith("at ground truth:3")
               for m in evaluate_ava(LABEL_MAP, truth_outside, []).warnings)


def test_inverted_groundtruth_box_is_an_error_naming_the_line():
    with pytest.raises(AnnotationFormatError, match=r"^g\.csv:4: ground-truth box .* x2 < x1"):
        evaluate_ava(LABEL_MAP, [row("v", 902, (0.5, 0.1, 0.2, 0.9), 12, 0, line=4)], [], groundtruth_source="g.csv")


def test_no_groundtruth_for_any_class_is_an_error():
    with pytest.raises(AnnotationFormatError, match="no ground-truth box of a label-map class"):
        evaluate_ava(LABEL_MAP, [row("v", 902, BOX_A, 2, 0)], [])
    with pytest.raises(AnnotationFormatError, match="no ground-truth box of a label-map class"):
        evaluate_ava(LABEL_MAP, [row("v", 902, BOX_A, 12, 0)], [], excluded_keys={"v,0902"})


def test_empty_groundtruth_is_an_error():
    with pytest.raises(AnnotationFormatError, match=r"^g\.csv: no ground-truth rows \(empty file\)"):
        evaluate_ava(LABEL_MAP, [], [row("v", 902, BOX_A, 12, 0.5)], groundtruth_source="g.csv")


def test_detection_csv_round_trip_and_file_evaluation(tmp_path):
    label_map = tmp_path / "labels.pbtxt"
    label_map.write_text('item {\n  name: "stand"\n  id: 12\n}\nitem {\n  name: "bend/bow"\n  id: 1\n}\n')
    truth = tmp_path / "gt.csv"
    truth.write_text("v,0902,0.100,0.100,0.400,0.900,12,0\nv,0902,0.100,0.100,0.400,0.900,1,0\n")
    scores = np.zeros((2, 80))
    scores[0, 11] = 0.75  # id 12 on the right box
    scores[1, 0] = 0.5  # id 1 on a wrong box
    rows = detection_rows_from_scores(["v", "v"], [902, 902], np.array([BOX_A, BOX_B]), scores, class_ids=[1, 12])
    detections = tmp_path / "detections.csv"
    write_detections_csv(str(detections), rows)
    lines = detections.read_text().splitlines()
    assert lines[0] == "v,0902,0.100,0.100,0.400,0.900,1,0.000000"
    assert len(lines) == 4
    assert list(iter_box_rows(str(detections)))[1].last_column == 0.75
    result = evaluate_ava_files(str(label_map), str(truth), str(detections))
    # bend/bow: the wrong box (0.5) outranks the right one (0.0): precision 1/2 at full recall.
    assert result.per_class_ap == {"stand": 1.0, "bend/bow": 0.5}
    assert result.mean_ap == 0.75


def test_a_detection_without_score_is_an_error_naming_the_line():
    truth = [row("v", 902, BOX_A, 12, 0)]
    with pytest.raises(AnnotationFormatError, match=r"^d\.csv:3: no score; detection rows are"):
        evaluate_ava(LABEL_MAP, truth, [row("v", 902, BOX_B, 12, None, line=3)], detections_source="d.csv")


def test_a_tie_at_the_fifty_detection_cap_keeps_the_earlier_rows():
    truth = [row("v", 902, BOX_A, 12, 0)]
    full = [row("v", 902, BOX_B, 1, 0.5) for _ in range(50)]
    tied = evaluate_ava(LABEL_MAP, truth, full + [row("v", 902, BOX_A, 12, 0.5)])
    assert tied.per_class_ap["stand"] == 0.0  # same score as the kept minimum: not admitted
    higher = evaluate_ava(LABEL_MAP, truth, full + [row("v", 902, BOX_A, 12, 0.5000001)])
    assert higher.per_class_ap["stand"] == 1.0
