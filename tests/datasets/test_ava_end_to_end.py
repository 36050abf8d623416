"""A tiny AVA run on generated videos: train the detector, test on proposals, write and score detections."""
import json
import random
import shutil

import pytest
import torch

from hiera_video.datasets.ava import AvaDataset, TrimmedVideos
from hiera_video.evaluation.ava_testing import evaluate_ava_predictions, predict_ava_detections
from hiera_video.models.ava_head import create_ava_detector
from tests.datasets.test_ava_dataset import ava_cfg, ava_root  # noqa: F401 (fixture)

LABEL_MAP = "".join(
    f'item {{\n  name: "{name}"\n  id: {action_id}\n}}\n'
    for name, action_id in (("bend/bow", 1), ("stand", 12), ("walk", 14), ("watch (a person)", 80))
)


def test_tiny_ava_train_then_test(ava_root, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    random.seed(0)
    annotations = tmp_path / "annotations"
    shutil.copytree(ava_root / "annotations", annotations)
    (annotations / "labels.pbtxt").write_text(LABEL_MAP)
    cfg = ava_cfg(ava_root)
    cfg.AVA.ANNOTATION_DIR = str(annotations)
    cfg.AVA.LABEL_MAP_FILE, cfg.AVA.GROUNDTRUTH_FILE, cfg.AVA.EXCLUSION_FILE = "labels.pbtxt", "ava_train_v2.2.csv", ""
    cfg.AVA.TRAIN_BOX_JITTER = 0.05

    train_set = AvaDataset(cfg, "train")
    loader = torch.utils.data.DataLoader(train_set, batch_size=3, shuffle=True, collate_fn=train_set.collate_fn)
    model = create_ava_detector("hiera_base_16x224", input_size=(8, 64, 64), embed_dim=16, num_heads=1,
                                stages=(1, 1, 1, 1), dropout_rate=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _epoch in range(12):
        for batch in loader:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch.clips, batch.boxes),
                                                                        batch.labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]

    # Test on proposals; vidB's video is missing, so its keyframe fails and its ground truth is missed.
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(ava_root / "videos" / "vidA.mp4", videos)
    test_set = AvaDataset(cfg, "val", frame_source=TrimmedVideos(str(videos)))
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=2, collate_fn=test_set.collate_fn)
    predictions = predict_ava_detections(model, test_loader)
    assert predictions.scores.shape == (2, 80)  # two decoded proposals, a score per id
    assert len(list(predictions.rows(range(1, 81)))) == 2 * 80
    assert [(item["video_id"], item["timestamp"]) for item in predictions.failed] == [("vidB", 905)]

    result = evaluate_ava_predictions(cfg, predictions, str(tmp_path / "out"))
    # stand: both ground-truth people have a matching proposal, so any scores rank them perfectly.
    assert result.per_class_ap["stand"] == 1.0
    # bend/bow: its person's proposal is below AVA.DETECTION_SCORE_THRESH; walk: the failed keyframe.
    assert result.per_class_ap["bend/bow"] == 0.0 and result.per_class_ap["walk"] == 0.0
    assert result.per_class_ap["watch (a person)"] in (0.5, 1.0)
    # The evaluator scores every ground-truth row, also those outside the keyframe seconds (vidB,0901).
    assert result.groundtruth_keys_without_detections == ["vidB,0905", "vidB,0901"]
    assert any("vidB,0905" in message for message in result.warnings)
    metrics = json.loads((tmp_path / "out" / "ava_metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(sum(result.per_class_ap.values()) / 4)
    # Rows of the label map's 4 classes for each of the 2 decoded proposals.
    assert (tmp_path / "out" / "ava_detections.csv").read_text().count("\n") == 2 * 4
    pytest.importorskip("matplotlib", reason="the chart needs the plot extra")
    assert (tmp_path / "out" / "ava_per_class_ap.png").exists()
