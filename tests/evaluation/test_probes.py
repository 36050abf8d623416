"""k-NN and linear probes on hand-made features whose answer is known."""
import math

import numpy as np
import pytest
import torch

from hiera_video.evaluation.probes import (
    LinearProbeOptions, ProbeInputError, knn_scores, linear_probe_model, run_probe, top_k_accuracy,
    train_linear_probe,
)
from hiera_video.inference.features import FeatureSet


def unit(*angles_degrees):
    """2-D unit vectors at the given angles: cosine similarity is the cosine of the angle between them."""
    radians = torch.tensor(angles_degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([radians.cos(), radians.sin()], dim=1).float()


def test_knn_votes_are_exp_similarity_over_temperature_summed_per_class():
    train = unit(0, 60, 90)
    labels = torch.tensor([0, 1, 1])
    scores = knn_scores(train, labels, unit(0), num_classes=2, k=3, temperature=0.5)
    expected = [math.exp(1.0 / 0.5), math.exp(0.5 / 0.5) + math.exp(0.0 / 0.5)]
    assert scores[0].tolist() == pytest.approx(expected, rel=1e-5)


def test_knn_uses_cosine_similarity_so_the_length_of_a_feature_does_not_matter():
    train = unit(0, 90) * torch.tensor([[100.0], [0.01]])
    scores = knn_scores(train, torch.tensor([0, 1]), unit(80) * 7, num_classes=2, k=1)
    assert scores.argmax(dim=1).tolist() == [1]


def test_a_low_temperature_lets_the_nearest_neighbour_outvote_a_farther_majority():
    train = unit(0, 40, -40)  # one neighbour of class 0 on top of the query, two of class 1 farther away
    labels = torch.tensor([0, 1, 1])
    query = unit(0)
    assert knn_scores(train, labels, query, 2, k=3, temperature=0.07).argmax().item() == 0
    assert knn_scores(train, labels, query, 2, k=3, temperature=100.0).argmax().item() == 1


def test_only_the_k_nearest_vote():
    train = unit(0, 90, 95, 100)
    scores = knn_scores(train, torch.tensor([0, 1, 1, 1]), unit(5), num_classes=2, k=1)
    assert scores[0, 1] == 0 and scores[0, 0] > 0


def test_knn_refuses_k_0_and_a_non_positive_temperature():
    with pytest.raises(ProbeInputError):
        knn_scores(unit(0), torch.tensor([0]), unit(0), 1, k=0)
    with pytest.raises(ProbeInputError):
        knn_scores(unit(0), torch.tensor([0]), unit(0), 1, temperature=0.0)


def test_top_k_accuracy_counts_the_label_among_the_k_highest_scores():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.5, 0.4]])
    labels = torch.tensor([0, 1, 2])
    assert top_k_accuracy(scores, labels, ks=(1, 2, 5)) == {"top1": pytest.approx(100 / 3, abs=1e-3),
                                                            "top2": 100.0, "top5": 100.0}


def separable(num_per_class=40, dim=16, num_classes=4, seed=0):
    """Gaussian clusters far apart, with an offset and scale the BatchNorm must absorb."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (num_classes, dim))
    labels = np.repeat(np.arange(num_classes), num_per_class)
    features = centres[labels] + rng.normal(0, 0.5, (len(labels), dim))
    return FeatureSet((features * 30 + 100).astype(np.float32), [f"v{i}" for i in range(len(labels))], labels)


def test_the_linear_probe_is_batchnorm_without_affine_then_linear():
    model = linear_probe_model(8, 3)
    assert isinstance(model[0], torch.nn.BatchNorm1d) and not model[0].affine
    assert isinstance(model[1], torch.nn.Linear) and model[1].out_features == 3


def test_the_linear_probe_separates_separable_features_perfectly():
    train, test = separable(seed=0), separable(seed=0)
    test.features = test.features + np.random.default_rng(1).normal(0, 5, test.features.shape).astype(np.float32)
    result = run_probe(train, test, "linear", linear=LinearProbeOptions(epochs=8, batch_size=64, warmup_epochs=1))
    assert result["top1"] == 100.0 and result["method"] == "linear" and result["epochs"] == 8


def test_knn_on_separable_features_is_perfect_and_reports_its_settings():
    result = run_probe(separable(seed=0), separable(seed=0), "knn", k=5)
    assert result["top1"] == 100.0 and result["top5"] == 100.0
    assert (result["k"], result["temperature"], result["num_classes"]) == (5, 0.07, 4)


def test_training_the_probe_is_reproducible_with_a_seed():
    data = separable(num_per_class=10)
    x, y = torch.from_numpy(data.features), torch.from_numpy(data.labels)
    options = LinearProbeOptions(epochs=3, batch_size=8, warmup_epochs=1)
    first, second = (train_linear_probe(x, y, 4, options)[1].weight for _ in range(2))
    assert torch.equal(first, second)


def test_features_without_labels_are_a_user_error():
    unlabelled = FeatureSet(np.zeros((2, 4), np.float32), ["a.mp4", "b.mp4"])
    with pytest.raises(ProbeInputError, match="no labels"):
        run_probe(unlabelled, separable(), "knn")


def test_train_and_test_features_of_different_sizes_are_a_user_error():
    with pytest.raises(ProbeInputError, match="dimensions"):
        run_probe(separable(dim=8), separable(dim=16), "knn")
