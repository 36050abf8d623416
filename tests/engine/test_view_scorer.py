"""The test loop's batching: full passes of views across videos, per-video softmax sums, no double count."""
import torch

from hiera_video.config.defaults import get_cfg
from hiera_video.engine.distributed import DistributedContext
from hiera_video.datasets.batches import ViewBatch
from hiera_video.engine.tasks.classification import evaluate_views
from hiera_video.engine.view_scorer import ViewScorer

NUM_CLASSES, VIEWS = 4, 3


class RecordingModel(torch.nn.Module):
    """Logits from the mean of each clip; remembers the batch size of every forward pass."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(1, NUM_CLASSES)
        self.pass_sizes: list[int] = []

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        self.pass_sizes.append(len(clips))
        return self.proj(clips.flatten(1).mean(dim=1, keepdim=True))


def random_views(num_videos: int, seed: int) -> torch.Tensor:
    """[B, V, C, T, H, W] views."""
    return torch.randn(num_videos, VIEWS, 3, 2, 4, 4, generator=torch.Generator().manual_seed(seed))


def expected_sums(model: RecordingModel, views: torch.Tensor) -> torch.Tensor:
    """Per-video softmax sums computed one video at a time."""
    with torch.no_grad():
        return torch.stack([model(video).softmax(dim=-1).sum(dim=0) for video in views])


def test_views_of_several_videos_fill_every_pass_but_the_last():
    model = RecordingModel()
    scorer = ViewScorer(model, clips_per_pass=4, precision="", device=torch.device("cpu"), num_videos=5)
    batches = [(random_views(1, 0), torch.tensor([0])), (random_views(2, 1), torch.tensor([1, 2])),
               (random_views(2, 2), torch.tensor([3, 4]))]
    for views, indices in batches:
        scorer.add(views, indices)
    sums = scorer.finish()
    assert model.pass_sizes == [4, 4, 4, 3]  # 15 views: three full passes of 4, then the last 3
    all_views = torch.cat([views for views, _ in batches])
    torch.testing.assert_close(sums, expected_sums(model, all_views))


def test_a_video_the_sampler_repeats_is_counted_once():
    cfg = get_cfg()
    cfg.TEST.BATCH_SIZE, cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 6, VIEWS, 1
    views = random_views(3, 3)
    batches = [
        ViewBatch(views[:2], torch.tensor([0, 1]), torch.tensor([0, 1])),
        # the padded shard repeats video 0 next to the new video 2
        ViewBatch(torch.stack([views[0], views[2]]), torch.tensor([0, 2]), torch.tensor([0, 2])),
    ]

    class Loader(list):
        dataset = [None] * 3

    ctx = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    model = RecordingModel()
    metrics, predictions = evaluate_views(cfg, model, Loader(batches), ctx)
    assert metrics["num_evaluated"] == 3 and list(predictions["index"]) == [0, 1, 2]
    torch.testing.assert_close(torch.from_numpy(predictions["scores"]), expected_sums(model, views))
