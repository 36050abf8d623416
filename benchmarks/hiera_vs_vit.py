"""Hiera-B against a plain ViT-B on 16x224 video, in the same process and harness.

    python benchmarks/hiera_vs_vit.py [--repeats 3] [--batch-size 1] [--train]

The paper's claim: Hiera-B (102 GMACs) is over 2x faster than ViT-B (MAE-ST style: 2x16x16 patches,
1568 tokens, 180 GMACs). The ViT here is built from ``torch.nn.TransformerEncoderLayer`` (pre-norm, GELU,
fused SDPA), so it is a strong baseline, not a straw man. Reported: median seconds per step of ViT-B, the
official Hiera-B and ours, and the ratios ViT-B / Hiera-B for both Hiera implementations.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

from hiera_video.models import create_model, model_architecture
from hiera_video.models.complexity import count_macs


class VideoViT(nn.Module):
    """ViT for 16x224 clips as in MAE-ST: 2x16x16 tube patches, separate space/time position embeddings."""

    def __init__(self, dim: int = 768, depth: int = 12, heads: int = 12, num_classes: int = 400,
                 input_size=(16, 224, 224), patch=(2, 16, 16)):
        super().__init__()
        grid = [i // p for i, p in zip(input_size, patch)]
        self.patch_embed = nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
        self.pos_embed_spatial = nn.Parameter(torch.randn(1, 1, grid[1] * grid[2], dim) * 0.02)
        self.pos_embed_temporal = nn.Parameter(torch.randn(1, grid[0], 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] -> logits [B, num_classes]."""
        x = self.patch_embed(x)                                   # [B, C, T', H', W']
        x = x.flatten(3).permute(0, 2, 3, 1)                      # [B, T', H'W', C]
        x = (x + self.pos_embed_spatial + self.pos_embed_temporal).flatten(1, 2)
        return self.head(self.norm(self.blocks(x).mean(dim=1)))


def official_hiera_base() -> nn.Module:
    """The official Hiera-B 16x224 (hiera-transformer)."""
    from hiera.hiera import Hiera as OfficialHiera

    return OfficialHiera(**model_architecture("hiera_base_16x224")[1])


def median_step_seconds(models: dict, clips: torch.Tensor, repeats: int, train: bool) -> dict:
    """Median seconds per forward (or forward + backward) of each model, run alternately."""
    def step(model):
        if train:
            model(clips).float().sum().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model(clips)

    for model in models.values():
        model.train(train)
        step(model)  # warm-up
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            step(model)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None) -> None:
    """Measure ViT-B, official Hiera-B and ours; print a Markdown table with ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--train", action="store_true", help="time forward + backward instead of inference")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    models = {"ViT-B (MAE-ST)": VideoViT(), "Hiera-B official": official_hiera_base(),
              "Hiera-B ours": create_model("hiera_base_16x224")}
    clips = torch.randn(args.batch_size, 3, 16, 224, 224)
    with torch.device("meta"):
        macs = {"ViT-B (MAE-ST)": count_macs(VideoViT().eval(), torch.empty(1, 3, 16, 224, 224)),
                "Hiera-B ours": count_macs(create_model("hiera_base_16x224").eval(),
                                           torch.empty(1, 3, 16, 224, 224))}
    macs["Hiera-B official"] = macs["Hiera-B ours"]
    seconds = median_step_seconds(models, clips, args.repeats, args.train)
    vit = seconds["ViT-B (MAE-ST)"]
    kind = "forward + backward" if args.train else "inference"
    print(f"16x224 clips, batch {args.batch_size}, {kind}, CPU fp32 ({torch.get_num_threads()} threads), "
          f"torch {torch.__version__}, median of {args.repeats}")
    print("| model | GMACs | s/step | clips/s | speed-up over ViT-B |")
    print("|---|---|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {macs[name] / 1e9:.1f} | {value:.3f} | {args.batch_size / value:.2f} | "
              f"{vit / value:.2f}x |")


if __name__ == "__main__":
    main()
