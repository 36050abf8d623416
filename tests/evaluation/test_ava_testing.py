"""AVA test predictions: per-box arrays, repeats from sampler padding removed, rows made on demand."""
import torch

from hiera_video.evaluation.ava_testing import AvaPredictions


def predictions(keyframes, boxes, failed=()):
    """Predictions of boxes [K, 4] of dataset keyframes [K] (video "v", timestamp 900 + keyframe)."""
    keyframes = torch.tensor(keyframes)
    scores = torch.arange(len(keyframes) * 80, dtype=torch.float32).reshape(-1, 80) / 10_000
    return AvaPredictions(keyframes, ["v"] * len(keyframes), 900 + keyframes, torch.tensor(boxes), scores,
                          list(failed))


def test_keyframes_repeated_by_padding_are_kept_once_and_rows_come_per_class():
    box_a, box_b = [0.1, 0.1, 0.5, 0.9], [0.5, 0.2, 0.9, 0.9]
    shard_0 = predictions([0, 0, 1], [box_a, box_b, box_a], [{"video_id": "v", "timestamp": 902, "index": 2}])
    shard_1 = predictions([3, 0, 0], [box_b, box_a, box_b], [{"video_id": "v", "timestamp": 902, "index": 2}])
    merged = AvaPredictions.concat([shard_0, shard_1]).without_repeats()
    assert merged.keyframes.tolist() == [0, 0, 1, 3] and len(merged.failed) == 1
    assert torch.equal(merged.scores, torch.cat([shard_0.scores, shard_1.scores[:1]]))
    rows = list(merged.rows([12, 14], chunk=3))  # chunks do not change the rows
    assert len(rows) == 4 * 2 and rows[0] == ("v", 900, *map(float, torch.tensor(box_a).tolist()), 12,
                                              float(shard_0.scores[0, 11]))
    assert [row[6] for row in rows[:4]] == [12, 14, 12, 14]


def test_state_round_trips_and_an_empty_concat_is_empty():
    original = predictions([5, 6], [[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.4, 0.4]])
    again = AvaPredictions.from_state(original.state())
    assert again.video_ids == original.video_ids and torch.equal(again.scores, original.scores)
    assert len(AvaPredictions.concat([]).keyframes) == 0
