"""Hiera classifiers: same outputs as the official implementation, clear errors, compile and checkpointing."""
import pytest
import torch

from hiera_video.models import create_model, hiera, list_models, required_input_multiples
from hiera_video.models.hiera import attention

from .oracle import TINY_VIDEO, build_official, relative_error, tiny_overrides

CLASSIFIERS = [n for n in list_models() if not n.startswith("mae_")]


def test_every_official_name_is_available():
    sizes = ["tiny", "small", "base", "base_plus", "large", "huge"]
    expected = {f"hiera_{s}_224" for s in sizes} | {f"hiera_{s}_16x224" for s in sizes[2:]}
    expected |= {f"mae_{n}" for n in expected}
    assert set(list_models()) == expected


@pytest.mark.parametrize("name", list_models())
def test_state_dict_layout_matches_official(official, name):
    """Same keys and shapes as the official class with the same arguments (at a tiny width, since the
    official constructor cannot run on the meta device), so its checkpoints load strictly."""
    overrides = tiny_overrides(name)
    ours = create_model(name, **overrides)
    theirs = build_official(official, name, **overrides)
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    theirs_shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert ours_shapes == theirs_shapes


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_logits_and_intermediates_match_official(official, name):
    torch.manual_seed(0)
    overrides = tiny_overrides(name)
    theirs = build_official(official, name, **overrides).eval()
    theirs.head.act_func = lambda x: x  # the official head applies softmax in eval mode
    ours = create_model(name, **overrides).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, *ours.input_size)
    with torch.no_grad():
        logits, stages = ours(x, return_intermediates=True)
        ref_logits, ref_stages = theirs(x, return_intermediates=True)
    assert relative_error(logits, ref_logits) < 1e-4
    assert len(stages) == 4
    for feature, ref in zip(stages, ref_stages):
        assert feature.shape == ref.shape
        assert relative_error(feature, ref) < 1e-4


def test_full_size_video_model_matches_official(official):
    """hiera_base_16x224 at 16x224x224 with shared random weights: logits and every stage."""
    torch.manual_seed(0)
    theirs = build_official(official, "hiera_base_16x224").eval()
    ours = create_model("hiera_base_16x224").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 16, 224, 224)
    with torch.no_grad():
        logits, stages = ours(x, return_intermediates=True)
        probabilities, ref_stages = theirs(x, return_intermediates=True)
    assert relative_error(logits.softmax(dim=-1), probabilities) < 1e-4
    assert [tuple(s.shape) for s in stages] == [(1, 8, 56, 56, 96), (1, 8, 28, 28, 192),
                                                (1, 8, 14, 14, 384), (1, 8, 7, 7, 768)]
    for feature, ref in zip(stages, ref_stages):
        assert relative_error(feature, ref) < 1e-4


def test_eval_mode_returns_logits_not_probabilities():
    model = create_model("hiera_base_16x224", **TINY_VIDEO).eval()
    torch.nn.init.normal_(model.head.projection.weight, std=1.0)
    with torch.no_grad():
        logits = model(torch.randn(2, 3, *model.input_size))
    assert not torch.allclose(logits.sum(dim=-1), torch.ones(2))
    assert (logits < 0).any()


def test_forward_features_is_pooled_normed_last_stage():
    model = create_model("hiera_base_16x224", **TINY_VIDEO).eval()
    x = torch.randn(2, 3, *model.input_size)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
    assert features.shape == (2, model.num_features)
    torch.testing.assert_close(model.head(features), logits)


@pytest.mark.parametrize("shape, message", [
    ((2, 4, 64, 64), "rank 5"),
    ((2, 1, 4, 64, 64), "3 input channels"),
    ((2, 3, 4, 64, 96), "multiples of 2x32x32"),
])
def test_bad_input_gets_a_clear_error(shape, message):
    model = create_model("hiera_base_16x224", **TINY_VIDEO)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_unbuildable_size_names_the_required_multiples():
    with pytest.raises(ValueError, match="multiple of 2x32x32"):
        create_model("hiera_base_16x224", input_size=(16, 200, 224))
    assert required_input_multiples((2, 4, 4), (1, 8, 8), (1, 2, 2), 4) == [2, 32, 32]


def test_unknown_model_name_suggests_close_ones():
    with pytest.raises(ValueError, match="hiera_base_16x224"):
        create_model("hiera_bsae_16x224")


def test_other_input_sizes_build_and_run():
    model = create_model("hiera_base_16x224", **{**TINY_VIDEO, "input_size": (8, 96, 64)}).eval()
    with torch.no_grad():
        _, stages = model(torch.randn(1, 3, 8, 96, 64), return_intermediates=True)
    assert stages[-1].shape == (1, 4, 3, 2, 128)


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = create_model("hiera_base_16x224", **TINY_VIDEO)
    x = torch.randn(2, 3, *model.input_size)

    def gradients():
        model.zero_grad()
        model(x).square().sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = gradients()
    model.set_activation_checkpointing(True)
    checkpointed = gradients()
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b)


def test_drop_path_is_active_in_training_only():
    model = create_model("hiera_base_16x224", **TINY_VIDEO, drop_path_rate=0.5)
    x = torch.randn(4, 3, *model.input_size)
    model.train()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_compiles_without_graph_breaks():
    model = create_model("hiera_base_16x224", **TINY_VIDEO).eval()
    x = torch.randn(2, 3, *model.input_size)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_random_mask_keeps_the_same_number_of_units_per_clip():
    model = create_model("hiera_base_16x224")
    mask = model.get_random_mask(torch.empty(3, 1), mask_ratio=0.9)
    assert mask.shape == (3, 392)
    assert mask.sum(dim=1).tolist() == [39, 39, 39]


@pytest.mark.parametrize("amx, keys", [(True, 64), (True, 65), (False, 65)],
                         ids=["AMX window: matmuls", "AMX global: SDPA", "no AMX: matmuls"])
def test_bf16_attention_on_cpu_matches_fp32_sdpa(monkeypatch, amx, keys):
    monkeypatch.setattr(hiera, "CPU_HAS_AMX", amx)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 32) for n in (16, keys, keys))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    with torch.no_grad():
        got = attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert got.dtype == torch.bfloat16
    assert relative_error(got.float(), expected) < 2e-2


@pytest.mark.parametrize("amx", [True, False], ids=["AMX", "no AMX"])
def test_bf16_attention_gradients_match_fp32_sdpa(monkeypatch, amx):
    # training takes the matmuls on every CPU: flash's backward is the slower one
    monkeypatch.setattr(hiera, "CPU_HAS_AMX", amx)
    torch.manual_seed(0)
    fp32 = [torch.randn(2, 3, n, 32, requires_grad=True) for n in (16, 128, 128)]
    bf16 = [t.detach().bfloat16().requires_grad_() for t in fp32]
    upstream = torch.randn(2, 3, 16, 32)
    torch.nn.functional.scaled_dot_product_attention(*fp32).backward(upstream)
    attention(*bf16).backward(upstream.bfloat16())
    for expected, got in zip(fp32, bf16):
        assert got.grad.dtype == torch.bfloat16
        assert relative_error(got.grad.float(), expected.grad) < 3e-2


@pytest.mark.parametrize("amx, keys, grad, scores_limit, expected", [
    (False, 65, False, 2**25, "matmuls"), (True, 64, False, 2**25, "matmuls"), (True, 65, False, 2**25, "sdpa"),
    (True, 65, True, 2**25, "matmuls"), (True, 65, True, 1024, "sdpa")],
    ids=["no AMX", "AMX window", "AMX inference", "AMX training", "AMX training, scores too large"])
def test_bf16_cpu_attention_takes_the_faster_kernel(monkeypatch, amx, keys, grad, scores_limit, expected):
    monkeypatch.setattr(hiera, "CPU_HAS_AMX", amx)
    monkeypatch.setattr(hiera, "MAX_SCORES_BYTES_OF_MATMUL_TRAINING", scores_limit)
    used = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *args: used.append("sdpa") or sdpa(*args))
    # scores of [1, 2, 16, 65] in bf16 take 4160 bytes: over a 1024-byte limit
    q, k, v = (torch.randn(1, 2, n, 8, dtype=torch.bfloat16) for n in (16, keys, keys))
    with torch.set_grad_enabled(grad):
        attention(q, k, v)
    assert (used[0] if used else "matmuls") == expected


@pytest.mark.parametrize("cast", ["autocast", "bf16 model"])
def test_bf16_logits_stay_close_to_fp32(cast):
    torch.manual_seed(0)
    model = create_model("hiera_base_16x224", **TINY_VIDEO).eval()
    x = torch.randn(4, 3, *model.input_size)
    with torch.no_grad():
        expected = model(x)
        if cast == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                got = model(x)
        else:
            got = model.to(torch.bfloat16)(x.bfloat16())
    assert relative_error(got.float(), expected) < 5e-2
