"""VideoClassifier: checkpoints in, plain-dict predictions out; windows, arrays, bad files, batching, scores
that are not finite."""
import json
import os

import numpy as np
import pytest
import torch

from hiera_video import VideoClassifier
from hiera_video.engine.precision import resolve_precision
from hiera_video.inference.predictor import resolve_device
from hiera_video.inference.report import write_json
from hiera_video.datasets.clip_dataset import VideoClipDataset
from hiera_video.datasets.decoding import VideoDecodeError, open_video
from hiera_video.datasets.list_files import VideoEntry
from hiera_video.models.checkpoint import CheckpointError
from tests.inference.conftest import CLASS_NAMES, MeanColourClassifier, coloured_frames, tiny_cfg


def test_a_toolkit_checkpoint_alone_gives_named_top_k(classifier, videos):
    result = classifier.predict(videos["clip"], top_k=2)
    assert result["path"] == videos["clip"] and result["error"] is None
    assert result["duration"] == pytest.approx(3.0) and result["num_frames"] == 90
    assert result["views"] == "3x3" and result["decoder"] == "pyav" and result["windows"] == []
    assert len(result["top_k"]) == 2
    assert all(entry["label"] == CLASS_NAMES[entry["index"]] for entry in result["top_k"])
    assert result["top_k"][0]["score"] >= result["top_k"][1]["score"]
    json.dumps(result)  # plain types only


def test_scores_are_the_test_protocol_average_of_view_softmaxes(classifier, tiny_model, videos):
    """The same views and the same model as multi-view testing (tools/run_net.py) give the same scores."""
    cfg = tiny_cfg()
    dataset = VideoClipDataset(cfg, [VideoEntry(videos["clip"], 0)], CLASS_NAMES, "test")
    with torch.no_grad():
        expected = tiny_model(dataset.load_test_views(0)).softmax(dim=-1).mean(dim=0)  # [V, K] -> [K]
    result = classifier.predict(videos["clip"], top_k=3)
    scores = {entry["index"]: entry["score"] for entry in result["top_k"]}
    assert [scores[i] for i in range(3)] == pytest.approx(expected.tolist(), abs=1e-5)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-4)


def test_views_change_what_is_looked_at(classifier, videos):
    one_view = classifier.predict(videos["clip"], top_k=3, views="1x1")
    assert one_view["views"] == "1x1"
    default = classifier.predict(videos["clip"], top_k=3)
    assert [e["score"] for e in one_view["top_k"]] != pytest.approx([e["score"] for e in default["top_k"]], abs=1e-6)


def test_a_frame_array_predicts_like_the_file_it_was_decoded_from(classifier, videos):
    with open_video(videos["clip"]) as video:
        frames = video.get_frames(range(video.num_frames)).numpy()
    from_array = classifier.predict(frames, top_k=3, fps=30)
    from_file = classifier.predict(videos["clip"], top_k=3)
    assert from_array["path"] == "<array>" and from_array["decoder"] == "array"
    file_scores = [e["score"] for e in from_file["top_k"]]
    assert [e["score"] for e in from_array["top_k"]] == pytest.approx(file_scores, abs=1e-5)
    with pytest.raises(ValueError, match="fps"):
        classifier.predict(frames, top_k=3)


def test_windows_follow_what_happens_in_a_long_video(videos):
    colour = VideoClassifier(MeanColourClassifier(), tiny_cfg(), CLASS_NAMES, device="cpu")
    result = colour.predict(videos["colours"], top_k=1, window=2.0)
    assert [(w["start"], w["end"]) for w in result["windows"]] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert [w["top_k"][0]["label"] for w in result["windows"]] == ["red", "green", "blue"]
    assert all(w["top_k"][0]["score"] > 0.9 for w in result["windows"])
    assert result["views"] == "3x3" and result["window_views"] == "1x3" and result["window"] == 2.0
    whole = colour.predict(videos["colours"], top_k=1)
    assert whole["window_views"] is None and whole["windows"] == []


def test_a_window_scores_like_the_same_frames_given_alone(classifier):
    frames = torch.cat([coloured_frames([(200, 30, 30)], 1), coloured_frames([(30, 30, 200)], 1)])
    frames[:, 10:20, 10:40] = 255  # some structure for the tiny Hiera to see
    frames[30:, :, :8] = 0
    windowed = classifier.predict(frames, top_k=3, fps=30, window=1.0)
    for number, window in enumerate(windowed["windows"]):
        alone = classifier.predict(frames[30 * number: 30 * (number + 1)], top_k=3, fps=30, views="1x3")
        assert [e["score"] for e in window["top_k"]] == pytest.approx([e["score"] for e in alone["top_k"]], abs=1e-5)
    wider = classifier.predict(frames, top_k=3, fps=30, window=1.0, window_views="2x1")
    assert wider["window_views"] == "2x1" and wider["windows"][0]["top_k"] != windowed["windows"][0]["top_k"]
    with pytest.raises(ValueError, match="window length"):
        classifier.predict(frames, fps=30, window_views="2x1")


def test_windows_leave_the_whole_video_scores_as_they_are(classifier, videos):
    """The whole video keeps the configured test views when windows are asked for too."""
    whole = classifier.predict(videos["clip"], top_k=3)
    windowed = classifier.predict(videos["clip"], top_k=3, window=1.0)
    assert windowed["views"] == whole["views"] == "3x3" and len(windowed["windows"]) == 3
    assert windowed["top_k"] == whole["top_k"]
    explicit = classifier.predict(videos["clip"], top_k=3, views="2x1", window=1.0)
    assert explicit["views"] == "2x1" and explicit["top_k"] == classifier.predict(videos["clip"], top_k=3,
                                                                                   views="2x1")["top_k"]


def test_predict_scores_a_clip_as_the_test_stage_does(toolkit_checkpoint, classifier, videos, tmp_path):
    """tools/run_net.py testing of the same clip, config and checkpoint sums the same views' softmaxes."""
    from hiera_video.engine import run

    (tmp_path / "val.csv").write_text("clip.mp4 1\n")
    run(tiny_cfg("OUTPUT_DIR", str(tmp_path / "job"), "TRAIN.ENABLE", "False", "TEST.ENABLE", "True",
                 "TEST.CHECKPOINT_FILE_PATH", toolkit_checkpoint, "DATA.PATH_TO_DATA_DIR", str(tmp_path),
                 "DATA.PATH_PREFIX", os.path.dirname(videos["clip"]), "DATA_LOADER.NUM_WORKERS", "0"))
    tested = np.load(tmp_path / "job" / "test" / "predictions.npz")["scores"][0] / 9  # summed over 3x3 views
    predicted = {entry["index"]: entry["score"] for entry in classifier.predict(videos["clip"], top_k=3)["top_k"]}
    assert [predicted[i] for i in range(3)] == pytest.approx(tested.tolist(), abs=1e-5)


def test_a_bad_file_among_good_ones_is_reported_and_the_rest_go_on(classifier, videos):
    paths = [videos["clip"], videos["broken"], videos["short"], videos["empty"], "/nonexistent/clip.mp4"]
    records = classifier.predict_many(paths, top_k=2)
    assert [r["path"] for r in records] == paths
    assert [r["error"] is None for r in records] == [True, False, True, False, False]
    assert "cannot open" in records[1]["error"] and "empty" in records[3]["error"]
    assert records[4]["error"] == "file not found"
    assert records[1]["top_k"] == [] and records[1]["duration"] is None
    assert records[0]["top_k"] == classifier.predict(videos["clip"], top_k=2)["top_k"]
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        classifier.predict(videos["broken"])


def test_decoding_workers_and_batch_sizes_do_not_change_results(toolkit_checkpoint, videos):
    paths = [videos["clip"], videos["broken"], videos["short"], videos["colours"]]
    one_by_one = VideoClassifier.from_checkpoint(toolkit_checkpoint, device="cpu", precision="fp32", batch_size=1)
    batched = VideoClassifier.from_checkpoint(toolkit_checkpoint, device="cpu", precision="fp32", batch_size=32)
    serial = one_by_one.predict_many(paths, top_k=3)
    parallel = batched.predict_many(paths, top_k=3, num_workers=2, window=2.0)
    parallel_whole = batched.predict_many(paths, top_k=3, num_workers=2)
    assert [r["error"] is None for r in parallel] == [True, False, True, True]
    for a, b in zip(serial, parallel_whole):
        assert [e["score"] for e in a["top_k"]] == pytest.approx([e["score"] for e in b["top_k"]], abs=1e-5)
    assert len(parallel[3]["windows"]) == 3


def test_an_official_checkpoint_needs_a_model_name_and_labels(official_checkpoint, classifier, videos, tmp_path):
    with pytest.raises(ValueError, match="--cfg FILE.*--model"):
        VideoClassifier.from_checkpoint(official_checkpoint)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(CLASS_NAMES) + "\n")
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_cfg().dump())
    with pytest.raises(ValueError, match="--labels FILE"):
        VideoClassifier.from_checkpoint(official_checkpoint, cfg=str(config))
    official = VideoClassifier.from_checkpoint(official_checkpoint, cfg=str(config), labels=str(labels),
                                               precision="fp32")
    assert official.predict(videos["clip"], top_k=3)["top_k"] == classifier.predict(videos["clip"], top_k=3)["top_k"]


def test_checkpoint_problems_are_explained(official_checkpoint, toolkit_checkpoint, tmp_path):
    two_labels, three_labels = tmp_path / "two.txt", tmp_path / "three.txt"
    two_labels.write_text("a\nb\n")
    three_labels.write_text("a\nb\nc\n")
    with pytest.raises(ValueError, match="names 2 classes but the checkpoint's head has 3"):
        VideoClassifier.from_checkpoint(toolkit_checkpoint, labels=str(two_labels))
    with pytest.raises(ValueError, match="image model"):
        VideoClassifier.from_checkpoint(official_checkpoint, model_name="hiera_tiny_224", labels=str(three_labels))
    # A wider model than the one trained does not fit its weights: the shapes are listed.
    with pytest.raises(CheckpointError, match="does not fit"):
        VideoClassifier.from_checkpoint(toolkit_checkpoint, opts=["HIERA.EMBED_DIM", "32"])
    mae = tmp_path / "mae.pth"
    state = torch.load(official_checkpoint, weights_only=True)["model_state"]
    torch.save({"model_state": {k: v for k, v in state.items() if not k.startswith("head.")}}, mae)
    with pytest.raises(CheckpointError, match="no classifier head"):
        VideoClassifier.from_checkpoint(str(mae), model_name="hiera_base_16x224")
    with pytest.raises(CheckpointError, match="does not exist"):
        VideoClassifier.from_checkpoint(str(tmp_path / "missing.pyth"))


def test_bad_arguments_are_refused(classifier, videos):
    with pytest.raises(ValueError, match="top_k"):
        classifier.predict(videos["clip"], top_k=0)
    with pytest.raises(ValueError, match="TxS"):
        classifier.predict(videos["clip"], views="many")
    with pytest.raises(ValueError, match="precision"):
        VideoClassifier(MeanColourClassifier(), tiny_cfg(), CLASS_NAMES, precision="int8")
    for window in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="window length must be a positive number of seconds"):
            classifier.predict(videos["clip"], window=window)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        VideoClassifier(MeanColourClassifier(), tiny_cfg(), CLASS_NAMES, batch_size=-1)


class OverflowingClassifier(MeanColourClassifier):
    """Finite weights whose logits overflow: +inf and -inf in one row give NaN probabilities."""

    def forward(self, clips):
        logits = super().forward(clips)
        return logits * torch.tensor([float("inf"), float("-inf"), 1.0])


def test_a_video_whose_scores_are_not_finite_fails_and_its_record_stays_valid_json(videos, tmp_path):
    overflowing = VideoClassifier(OverflowingClassifier(), tiny_cfg(), CLASS_NAMES, device="cpu", precision="fp32")
    (record,) = overflowing.predict_many([videos["short"]], window=0.5)
    assert record["error"] == "the model's scores are NaN or infinite" and record["top_k"] == []
    write_json([record], tmp_path / "p.json")
    json.loads((tmp_path / "p.json").read_text(), parse_constant=lambda name: pytest.fail(f"non-standard {name}"))
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json([{"score": float("nan")}], tmp_path / "never.json")


def test_device_and_precision_choices():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == ""
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
        resolve_precision("fp16", cpu)
    if not torch.cuda.is_available():
        assert resolve_device(None) == cpu
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_autocast_predicts_like_the_cpu(toolkit_checkpoint, classifier, videos):
    gpu = VideoClassifier.from_checkpoint(toolkit_checkpoint)  # default device and precision: CUDA, autocast
    assert gpu.device.type == "cuda" and gpu.precision in ("bf16", "fp16")
    on_gpu = {e["index"]: e["score"] for e in gpu.predict(videos["clip"], top_k=3)["top_k"]}
    on_cpu = {e["index"]: e["score"] for e in classifier.predict(videos["clip"], top_k=3)["top_k"]}
    assert [on_gpu[i] for i in range(3)] == pytest.approx([on_cpu[i] for i in range(3)], abs=0.02)


def test_a_stored_config_this_version_cannot_read_asks_for_cfg(official_checkpoint, tmp_path):
    state = torch.load(official_checkpoint, weights_only=True)["model_state"]
    path = tmp_path / "from_another_version.pyth"
    torch.save({"model_state": state, "cfg": tiny_cfg().dump() + "DATA_EXTRA_KEY: 1\n", "class_names": CLASS_NAMES},
               path)
    with pytest.raises(ValueError, match=r"the config stored in .*from_another_version.pyth.*DATA_EXTRA_KEY"
                                         r"(.|\n)*--cfg FILE"):
        VideoClassifier.from_checkpoint(str(path))


def test_variable_frame_rate_windows_use_the_frames_shown_at_their_times(tmp_path):
    from tests.datasets.conftest import write_variable_rate_video

    # 1 s of red at 60 fps (short frames), then 1 s of blue at 15 fps: 75 frames, 2 s.
    frames = torch.cat([coloured_frames([(255, 0, 0)], 1, fps=60), coloured_frames([(0, 0, 255)], 1, fps=15)])
    path = tmp_path / "vfr.mp4"
    write_variable_rate_video(path, frames, [16] * 60 + [67] * 15)
    colour = VideoClassifier(MeanColourClassifier(), tiny_cfg(), CLASS_NAMES, device="cpu")
    result = colour.predict(str(path), top_k=1, window=1.0)
    assert result["num_frames"] == 75
    assert [w["top_k"][0]["label"] for w in result["windows"]] == ["red", "blue"]
