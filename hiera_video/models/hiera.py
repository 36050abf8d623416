"""Hiera: a hierarchical vision transformer for images and video (Ryali et al., ICML 2023).

Parameter names follow the official release, so its checkpoints load unchanged. The differences are in
speed: attention always reaches ``scaled_dot_product_attention`` as 4-D tensors (so fused kernels apply),
the token unroll and reroll are single precomputed gathers, and blocks can be activation-checkpointed.

The classifier returns logits in both train and eval mode (the official head applies softmax in eval);
apply ``softmax`` yourself when you want probabilities.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torch.utils.checkpoint import checkpoint
from torchvision.ops import StochasticDepth

from ..utils.cpu import cpu_has_amx
from .token_order import block_local_permutation, mask_unit_layout, undo_windowing, unroll_permutation

CPU_HAS_AMX = cpu_has_amx()  # read once, at import: a constant to torch.compile
# bf16 on an AMX CPU: windows of up to this many keys run as matmuls, longer attention as SDPA ...
MAX_KEYS_OF_A_MATMUL_WINDOW = 64
# ... and in training, attention whose scores take up to this many bytes (glibc's largest reused block)
MAX_SCORES_BYTES_OF_MATMUL_TRAINING = 32 * 2**20


class MaskUnitAttention(nn.Module):
    """Multi-head attention within mask units (windows) or over all tokens, with optional q-pooling.

    Tokens must be in unrolled order (window index fastest). ``q_stride`` is the flattened pooling
    stride (2x2 -> 4); ``window_size`` is the flattened size of a window after pooling.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        heads: int,
        q_stride: int = 1,
        window_size: int = 0,
        use_mask_unit_attn: bool = False,
    ):
        super().__init__()
        self.dim_out = dim_out
        self.heads = heads
        self.q_stride = q_stride
        self.window_size = window_size
        self.use_mask_unit_attn = use_mask_unit_attn
        self.qkv = nn.Linear(dim, 3 * dim_out)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, C] -> [B, N / q_stride, C_out]."""
        batch, num_tokens, _ = x.shape
        windows = num_tokens // (self.q_stride * self.window_size) if self.use_mask_unit_attn else 1
        # [B, N, 3*C] -> 3 x [B, tokens_per_window, windows, heads, head_dim]   (window index fastest)
        qkv = self.qkv(x).view(batch, -1, windows, 3, self.heads, self.dim_out // self.heads)
        q, k, v = qkv.unbind(dim=3)
        if self.q_stride > 1:
            # the pooled group is the outermost axis of the unrolled order
            q = q.view(batch, self.q_stride, -1, windows, self.heads, q.shape[-1]).amax(dim=1)
        # 4-D layout so SDPA can use its fused kernels: [B, (windows heads), tokens, head_dim]
        q, k, v = (rearrange(t, "b n w h d -> b (w h) n d") for t in (q, k, v))
        x = attention(q, k, v)
        # [B, (windows heads), tokens, head_dim] -> [B, (tokens windows), (heads head_dim)]
        x = rearrange(x, "b (w h) n d -> b (n w) (h d)", w=windows)
        return self.proj(x)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention of 4-D [B, heads, N_q, D] queries over [B, heads, N_k, D] keys and values.

    ``scaled_dot_product_attention`` everywhere except bf16 on the CPU, where two batched bf16 matmuls and
    a softmax run instead where they are the faster (``benchmarks/README.md``, "CPU precision"): at every
    shape on CPUs without AMX tiles; with AMX, in windows of up to 64 keys and, in training, wherever the
    attention scores fit in 32 MiB (flash's backward is the slower one there; beyond that size glibc maps
    every scores tensor afresh and flash is faster).
    """
    if q.device.type != "cpu" or q.dtype != torch.bfloat16:
        return F.scaled_dot_product_attention(q, k, v)
    if CPU_HAS_AMX and k.shape[-2] > MAX_KEYS_OF_A_MATMUL_WINDOW:
        scores_bytes = q.numel() // q.shape[-1] * k.shape[-2] * q.element_size()
        if not torch.is_grad_enabled() or scores_bytes > MAX_SCORES_BYTES_OF_MATMUL_TRAINING:
            return F.scaled_dot_product_attention(q, k, v)
    with torch.autocast("cpu", enabled=False):  # keep the softmax in bf16 under autocast, as SDPA does
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # [B, heads, N_q, N_k]
        return scores.softmax(dim=-1) @ v


class Mlp(nn.Module):
    """Two-layer perceptron with exact GELU."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, C] -> [B, N, C]."""
        return self.fc2(self.act(self.fc1(x)))


def max_pool_unrolled(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Max-pool unrolled tokens by ``stride`` (flattened): [B, N, C] -> [B, N / stride, C]."""
    if stride == 1:
        return x
    return x.view(x.shape[0], stride, -1, x.shape[-1]).amax(dim=1)


class HieraBlock(nn.Module):
    """Pre-norm transformer block; at a width change the residual is maxpool(Linear(LayerNorm(x)))."""

    def __init__(
        self,
        dim: int,
        dim_out: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        q_stride: int = 1,
        window_size: int = 0,
        use_mask_unit_attn: bool = False,
    ):
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MaskUnitAttention(dim, dim_out, heads, q_stride, window_size, use_mask_unit_attn)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = Mlp(dim_out, int(dim_out * mlp_ratio))
        self.drop_path = StochasticDepth(drop_path, mode="row") if drop_path > 0 else nn.Identity()
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, C] -> [B, N / q_stride, C_out]."""
        x_norm = self.norm1(x)
        if self.dim != self.dim_out:
            x = max_pool_unrolled(self.proj(x_norm), self.attn.q_stride)
        x = x + self.drop_path(self.attn(x_norm))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Head(nn.Module):
    """Dropout and a linear classifier; returns logits."""

    def __init__(self, dim: int, num_classes: int, dropout_rate: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.projection = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C] -> [B, num_classes] logits."""
        return self.projection(self.dropout(x))


class PatchEmbed(nn.Module):
    """Strided convolution (2-D for images, 3-D for video) that zeroes masked regions first."""

    def __init__(self, dim_in: int, dim_out: int, kernel: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int]):
        super().__init__()
        conv = nn.Conv3d if len(kernel) == 3 else nn.Conv2d
        self.proj = conv(dim_in, dim_out, kernel_size=kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[B, C, (T), H, W] -> [B, N, C_out]; ``mask`` is [B, 1, *mask_units] with 1 = keep."""
        if mask is not None:
            # nearest upsampling of the mask-unit grid to pixels, so masked pixels never leak through
            x = x * F.interpolate(mask.float(), size=x.shape[2:]).bool()
        return self.proj(x).flatten(2).transpose(1, 2)


class Reroll(nn.Module):
    """Brings unrolled tokens of any stage back to spatial order (or to per-mask-unit blocks)."""

    def __init__(self, tokens_shape: Sequence[int], schedule: List[Tuple[int, ...]], num_stages: int,
                 q_pool: int):
        super().__init__()
        self.layouts = []
        shape = list(tokens_shape)
        for stage in range(num_stages):
            pools = min(stage, q_pool)
            if stage > 0 and stage <= q_pool:
                shape = [n // s for n, s in zip(shape, schedule[stage - 1])]
            remaining = schedule[pools:]
            local_perm, _ = block_local_permutation(remaining)
            grid, block_shape = mask_unit_layout(shape, remaining)
            self.register_buffer(f"local_perm_{stage}", local_perm, persistent=False)
            self.layouts.append((grid, block_shape))

    def forward(self, x: torch.Tensor, stage: int, masked: bool = False) -> torch.Tensor:
        """[B, N, C] of ``stage`` -> [B, *spatial, C], or [B, units, *block, C] when ``masked``."""
        grid, block_shape = self.layouts[stage]
        batch, num_tokens, channels = x.shape
        block_tokens = math.prod(block_shape)
        # [B, N, C] -> [B, block_tokens, units, C], offsets reordered into row-major block positions
        x = x.view(batch, block_tokens, num_tokens // block_tokens, channels)
        x = x.index_select(1, getattr(self, f"local_perm_{stage}"))
        x = x.transpose(1, 2).reshape(batch, -1, *block_shape, channels)
        return x if masked else undo_windowing(x, grid, block_shape)


class Hiera(nn.Module):
    """The Hiera backbone and classifier, for images (2-D inputs) and video (3-D inputs).

    Args:
        input_size: (H, W) for images or (T, H, W) for video, in pixels / frames.
        in_chans: input channels.
        embed_dim, num_heads: width and heads of the first stage (both doubled at each stage by default).
        num_classes: classifier outputs.
        stages: blocks per stage.
        q_pool: number of stage transitions that pool queries (and tokens).
        q_stride: pooling stride per dimension at those transitions.
        mask_unit_size: tokens per mask unit per dimension.
        mask_unit_attn: per stage, attention within mask units (True) or global (False).
        dim_mul, head_mul: width and head multipliers at each stage transition.
        patch_kernel, patch_stride, patch_padding: the patch-embedding convolution.
        mlp_ratio: MLP hidden width over block width.
        drop_path_rate: stochastic depth at the last block (linear from 0).
        head_dropout: dropout before the classifier.
        sep_pos_embed: separate spatial and temporal position embeddings (video).
    """

    def __init__(
        self,
        input_size: Tuple[int, ...] = (224, 224),
        in_chans: int = 3,
        embed_dim: int = 96,
        num_heads: int = 1,
        num_classes: int = 1000,
        stages: Tuple[int, ...] = (2, 3, 16, 3),
        q_pool: int = 3,
        q_stride: Tuple[int, ...] = (2, 2),
        mask_unit_size: Tuple[int, ...] = (8, 8),
        mask_unit_attn: Tuple[bool, ...] = (True, True, False, False),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
        patch_kernel: Tuple[int, ...] = (7, 7),
        patch_stride: Tuple[int, ...] = (4, 4),
        patch_padding: Tuple[int, ...] = (3, 3),
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        head_dropout: float = 0.0,
        head_init_scale: float = 0.001,
        sep_pos_embed: bool = False,
    ):
        super().__init__()
        self.input_size = tuple(input_size)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.q_pool, self.q_stride = q_pool, tuple(q_stride)
        self.mask_unit_size = tuple(mask_unit_size)
        self.patch_stride = tuple(patch_stride)
        self.sep_pos_embed = sep_pos_embed
        self.activation_checkpointing = False
        # the input the weights expect (mean, std, frames, ...), timm's pretrained_cfg; create_model fills it
        self.pretrained_cfg: dict = {}
        _check_architecture(self.input_size, stages, q_pool, q_stride, mask_unit_size, mask_unit_attn,
                            patch_kernel, patch_stride, patch_padding)

        self.tokens_spatial_shape = [i // s for i, s in zip(input_size, patch_stride)]
        self.mask_spatial_shape = [t // m for t, m in zip(self.tokens_spatial_shape, mask_unit_size)]
        self.mu_size = math.prod(mask_unit_size)
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]

        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_kernel, patch_stride, patch_padding)
        if sep_pos_embed:
            t, h, w = self.tokens_spatial_shape
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, h * w, embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, t, embed_dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.tokens_spatial_shape), embed_dim))

        schedule = [tuple(q_stride)] * (len(stages) - 1)
        self.register_buffer("unroll_perm", unroll_permutation(self.tokens_spatial_shape, schedule),
                             persistent=False)
        self.reroll = Reroll(self.tokens_spatial_shape, schedule, len(stages), q_pool)
        self.blocks = self._build_blocks(embed_dim, num_heads, stages, mask_unit_attn, dim_mul, head_mul,
                                         mlp_ratio, drop_path_rate)
        self.num_features = self.blocks[-1].dim_out
        self.norm = nn.LayerNorm(self.num_features, eps=1e-6)
        self.head = Head(self.num_features, num_classes, dropout_rate=head_dropout)
        self._init_weights(head_init_scale)

    def _build_blocks(self, dim, heads, stages, mask_unit_attn, dim_mul, head_mul, mlp_ratio,
                      drop_path_rate) -> nn.ModuleList:
        """Blocks of all stages; the first block of a stage pools and keeps the previous attention kind."""
        depth = sum(stages)
        q_pool_blocks = {end + 1 for end in self.stage_ends[: self.q_pool]}
        flat_q_stride = math.prod(self.q_stride)
        window_size = self.mu_size
        drop_rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        blocks, stage = nn.ModuleList(), 0
        for i in range(depth):
            dim_out = dim
            use_mask_unit_attn = mask_unit_attn[stage]  # lags one block behind the stage change
            if i - 1 in self.stage_ends:
                dim_out, heads, stage = int(dim * dim_mul), int(heads * head_mul), stage + 1
                if i in q_pool_blocks:
                    window_size //= flat_q_stride
            blocks.append(HieraBlock(
                dim, dim_out, heads, mlp_ratio, drop_rates[i],
                q_stride=flat_q_stride if i in q_pool_blocks else 1,
                window_size=window_size, use_mask_unit_attn=use_mask_unit_attn,
            ))
            dim = dim_out
        return blocks

    def _init_weights(self, head_init_scale: float) -> None:
        for pos_embed in self._pos_embed_params():
            nn.init.trunc_normal_(pos_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.constant_(module.bias, 0.02)
            elif isinstance(module, nn.LayerNorm):
                nn.init.constant_(module.bias, 0.02)
                nn.init.constant_(module.weight, 1.0)
        self.head.projection.weight.data.mul_(head_init_scale)
        self.head.projection.bias.data.mul_(head_init_scale)

    def _pos_embed_params(self) -> List[nn.Parameter]:
        return [self.pos_embed_spatial, self.pos_embed_temporal] if self.sep_pos_embed else [self.pos_embed]

    def no_weight_decay(self) -> List[str]:
        """Names of parameters that take no weight decay besides norms and biases."""
        return ["pos_embed_spatial", "pos_embed_temporal"] if self.sep_pos_embed else ["pos_embed"]

    def set_activation_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations in backward instead of storing them (saves memory)."""
        self.activation_checkpointing = enabled

    @property
    def num_mask_units(self) -> int:
        """Number of mask units of one input."""
        return math.prod(self.mask_spatial_shape)

    def get_pos_embed(self) -> torch.Tensor:
        """Position embedding of every token in spatial order: [1, N, C]."""
        if not self.sep_pos_embed:
            return self.pos_embed
        t, h, w = self.tokens_spatial_shape
        # spatial [1, H*W, C] + temporal [1, T, C] -> [1, T*H*W, C]
        return (self.pos_embed_spatial.unsqueeze(1) + self.pos_embed_temporal.unsqueeze(2)).flatten(1, 2)

    def get_random_mask(self, x: torch.Tensor, mask_ratio: float) -> torch.Tensor:
        """Random [B, num_mask_units] bool mask with ``int(units * (1 - mask_ratio))`` kept (True) per row."""
        num_keep = int(self.num_mask_units * (1 - mask_ratio))
        noise = torch.rand(x.shape[0], self.num_mask_units, device=x.device)
        ranks = noise.argsort(dim=1).argsort(dim=1)  # rank of each unit's noise: the smallest are kept
        return ranks < num_keep

    def check_input(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> None:
        """Raise a ValueError explaining what the model expects when ``x`` or ``mask`` does not fit."""
        expected = (self.in_chans, *self.input_size)
        kind = "video [B, C, T, H, W]" if len(self.input_size) == 3 else "image [B, C, H, W]"
        if x.dim() != len(expected) + 1:
            raise ValueError(f"Hiera expects a {kind} batch of rank {len(expected) + 1}, got shape "
                             f"{tuple(x.shape)}.")
        if x.shape[1] != self.in_chans:
            raise ValueError(f"Hiera expects {self.in_chans} input channels, got {x.shape[1]} "
                             f"(shape {tuple(x.shape)}); video is [B, C, T, H, W], channels first.")
        if tuple(x.shape[2:]) != tuple(self.input_size):
            multiples = "x".join(str(m) for m in required_input_multiples(
                self.patch_stride, self.mask_unit_size, self.q_stride, len(self.stage_ends)))
            raise ValueError(
                f"this model was built for input size {'x'.join(map(str, self.input_size))}, got "
                f"{'x'.join(map(str, x.shape[2:]))}. Build it with input_size={tuple(x.shape[2:])} "
                f"(sizes must be multiples of {multiples}); checkpoints' position embeddings are "
                f"interpolated to the new size at load time.")
        if mask is not None and tuple(mask.shape) != (x.shape[0], self.num_mask_units):
            raise ValueError(f"mask must be [B, {self.num_mask_units}] (one entry per mask unit), got "
                             f"{tuple(mask.shape)}.")

    def _run_blocks(self, x: torch.Tensor, masked: bool, return_intermediates: bool):
        intermediates = []
        for i, block in enumerate(self.blocks):
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
            if return_intermediates and i in self.stage_ends:
                intermediates.append(self.reroll(x, self.stage_ends.index(i), masked=masked))
        return x, intermediates

    def forward_tokens(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                       return_intermediates: bool = False):
        """Embed, unroll, drop masked units and run the blocks: returns (tokens [B, N', C], intermediates).

        Intermediates are [B, T', H', W', C'] per stage without a mask, or [B, kept_units, *block, C']
        with one.
        """
        self.check_input(x, mask)
        mask_grid = None if mask is None else mask.view(x.shape[0], 1, *self.mask_spatial_shape)
        x = self.patch_embed(x, mask=mask_grid) + self.get_pos_embed()
        x = x.index_select(1, self.unroll_perm)
        if mask is not None:
            # [B, N, C] -> [B, mu_size, units, C] -> keep the same units in every row
            batch, _, channels = x.shape
            x = x.view(batch, self.mu_size, -1, channels)
            x = x[mask.unsqueeze(1).expand(-1, self.mu_size, -1)].view(batch, -1, channels)
        return self._run_blocks(x, mask is not None, return_intermediates)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled, normalized features before the head: [B, C_last]."""
        tokens, _ = self.forward_tokens(x)
        return self.forward_head(tokens, pre_logits=True)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Last-stage tokens [B, N, C] (or a channels-last map [B, *spatial, C]) -> logits [B, num_classes];
        with ``pre_logits``, the mean-pooled, normalized features [B, C] the classifier reads."""
        # [B, *spatial, C] -> [B, N, C]; the mean over tokens does not depend on their order
        x = self.norm(x.flatten(1, -2).mean(dim=1))
        return x if pre_logits else self.head(x)

    def forward_intermediates(self, x: torch.Tensor, indices: Union[None, int, Sequence[int]] = None,
                              output_fmt: str = "NCTHW", intermediates_only: bool = False
                              ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stage feature maps, like timm's ``forward_intermediates``: (last-stage tokens [B, N, C], maps).

        ``indices``: the stages to return (0-based, negative from the end), an int n for the last n, None for
        all. ``output_fmt``: channels first ("NCTHW" for video, "NCHW" for images) or last ("NTHWC" /
        "NHWC"). With ``intermediates_only`` only the maps are returned.
        """
        channels_first = _is_channels_first(output_fmt, len(self.input_size))
        stages = _stage_indices(len(self.stage_ends), indices)
        tokens, maps = self.forward_tokens(x, return_intermediates=True)
        maps = [maps[i] for i in stages]
        if channels_first:
            maps = [feature.movedim(-1, 1) for feature in maps]  # [B, *spatial, C] -> [B, C, *spatial]
        return maps if intermediates_only else (tokens, maps)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a new one with ``num_classes`` outputs (0: none; ``model(x)`` then returns
        the pooled features), on the old one's device and dtype."""
        if num_classes > 0:
            weight = self.norm.weight
            new = nn.Linear(self.num_features, num_classes, device=weight.device, dtype=weight.dtype)
            nn.init.trunc_normal_(new.weight, std=0.02)
            nn.init.zeros_(new.bias)
        else:
            new = nn.Identity()
        self.head.projection = new
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                return_intermediates: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, List]]:
        """Logits [B, num_classes] (tokens when ``mask`` is given), plus stage feature maps on request.

        ``mask`` is [B, num_mask_units] bool, True = keep; every row must keep the same number of units.
        """
        x, intermediates = self.forward_tokens(x, mask, return_intermediates)
        if mask is None:
            x = self.forward_head(x)
        return (x, intermediates) if return_intermediates else x


def _is_channels_first(output_fmt: str, spatial_dims: int) -> bool:
    """Whether ``output_fmt`` puts channels first; a ValueError names the formats of this input rank."""
    formats = {3: ("NCTHW", "NTHWC"), 2: ("NCHW", "NHWC")}[spatial_dims]
    if output_fmt not in formats:
        raise ValueError(f"output_fmt {output_fmt!r} does not fit a model of {spatial_dims}-D inputs; use "
                         f"{formats[0]} (channels first) or {formats[1]} (channels last).")
    return output_fmt == formats[0]


def _stage_indices(num_stages: int, indices: Union[None, int, Sequence[int]]) -> List[int]:
    """Stage numbers from ``indices``: None = all, an int n = the last n, a sequence = those (negative ok)."""
    if indices is None:
        return list(range(num_stages))
    if isinstance(indices, int):
        if not 0 < indices <= num_stages:
            raise ValueError(f"indices={indices} asks for the last {indices} of {num_stages} stages.")
        return list(range(num_stages - indices, num_stages))
    chosen = [i + num_stages if i < 0 else i for i in indices]
    if any(not 0 <= i < num_stages for i in chosen):
        raise ValueError(f"indices {list(indices)} must be stage numbers in [-{num_stages}, {num_stages - 1}].")
    return chosen


def required_input_multiples(patch_stride: Sequence[int], mask_unit_size: Sequence[int],
                             q_stride: Sequence[int], num_stages: int) -> List[int]:
    """Per input dimension, the multiple an input size must be for this architecture."""
    return [p * max(m, q ** (num_stages - 1)) for p, m, q in zip(patch_stride, mask_unit_size, q_stride)]


def _check_architecture(input_size, stages, q_pool, q_stride, mask_unit_size, mask_unit_attn,
                        patch_kernel, patch_stride, patch_padding) -> None:
    """Raise a ValueError naming the argument when an architecture cannot be built."""
    dims = len(input_size)
    for name, value in [("q_stride", q_stride), ("mask_unit_size", mask_unit_size),
                        ("patch_kernel", patch_kernel), ("patch_stride", patch_stride),
                        ("patch_padding", patch_padding)]:
        if len(value) != dims:
            raise ValueError(f"{name}={tuple(value)} has {len(value)} entries but input_size="
                             f"{tuple(input_size)} has {dims}.")
    if len(mask_unit_attn) != len(stages):
        raise ValueError(f"mask_unit_attn needs one entry per stage ({len(stages)}), got {mask_unit_attn}.")
    if not 0 <= q_pool < len(stages):
        raise ValueError(f"q_pool={q_pool} must be in [0, {len(stages) - 1}] for {len(stages)} stages.")
    multiples = required_input_multiples(patch_stride, mask_unit_size, q_stride, len(stages))
    if any(size % m for size, m in zip(input_size, multiples)):
        raise ValueError(
            f"input_size={tuple(input_size)} does not fit this architecture: each size must be a multiple "
            f"of {'x'.join(map(str, multiples))} (patch stride x max(mask unit, q_stride^(stages-1))).")
