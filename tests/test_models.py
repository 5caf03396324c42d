"""Tests of dscore.models: the factory contract for every registered network, reference
implementations (functional ConvNet, torchvision ResNets), normalisation, seeding and errors."""
from __future__ import annotations

import socket

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore import models
from dscore.models import DscoreModel, count_parameters, create_model, list_models, model_kwargs

PAPER_MODELS = {"convnet", "convnet3", "convnet4", "resnet10", "resnet18", "resnet50", "resnetap10",
                "densenet121", "mobilenetv2", "vit", "swin", "convnext"}

# Small but structurally complete configurations, so the per-model tests stay fast.
SMALL_KWARGS = {
    "convnet": dict(width=8),
    "convnet3": dict(width=8),
    "convnet4": dict(width=8),
    "convnet_bn": dict(width=8),
    "resnet10": dict(width=8),
    "resnet18": dict(width=8),
    "resnet50": dict(width=8),
    "resnetap10": dict(width=8),
    "densenet121": dict(growth_rate=4, block_config=(1, 1, 1, 1)),
    "mobilenetv2": dict(width_mult=0.25),
    "vit": dict(embed_dim=24, depth=2, num_heads=2),
    "swin": dict(embed_dim=12, depths=(1, 1, 1), num_heads=(1, 2, 2)),
    "convnext": dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
}
SHAPES = [(1, 28), (3, 32)]  # (in_channels, image_size)


def small(name: str, *, in_channels: int, image_size: int, num_classes: int = 5, seed: int = 0, **extra):
    kwargs = {**SMALL_KWARGS.get(name, {}), **extra}
    return create_model(name, num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                        seed=seed, **kwargs)


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-4) -> None:
    """``max|a - b| <= rel · max|b|``: meaningful even for tiny outputs (e.g. MobileNetV2's
    0.01-std head gives logits of order 1e-7, where absolute tolerances are vacuous)."""
    assert actual.shape == expected.shape
    scale = expected.abs().max().item()
    assert scale > 0
    err = (actual - expected).abs().max().item()
    assert err <= rel * scale, f"max abs error {err:.3g} > {rel} * {scale:.3g}"


def images(n: int, c: int, s: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------------
# The contract, for every registered model
# --------------------------------------------------------------------------------------------

def test_registry_has_every_paper_model():
    assert PAPER_MODELS <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("in_channels,image_size", SHAPES, ids=["28px-1ch", "32px-3ch"])
@pytest.mark.parametrize("name", list_models())
def test_model_contract(name, in_channels, image_size):
    model = small(name, in_channels=in_channels, image_size=image_size, num_classes=5)
    assert isinstance(model, DscoreModel)
    x = images(2, in_channels, image_size)

    model.eval()
    with torch.no_grad():
        emb = model.embed(x)
        logits = model(x)
        assert emb.shape == (2, model.embed_dim)
        assert logits.shape == (2, 5)
        assert torch.isfinite(logits).all()
        assert_close_scaled(model.classify(emb), logits, rel=1e-5)
        # channels_last model and input give the same answer (no .view on strided tensors)
        model_cl = small(name, in_channels=in_channels, image_size=image_size, num_classes=5).eval()
        model_cl = model_cl.to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        assert_close_scaled(model_cl.embed(x_cl), emb)
        assert_close_scaled(model_cl(x_cl), logits)

    model.train()
    x = x.clone().requires_grad_(True)
    model(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


# CIFAR-10 (32 px, 3 channels, 10 classes) sizes: ResNet-18/50 as in the CIFAR literature
# (pytorch-cifar); ConvNet-3: 3 × (conv + GroupNorm affine) + 2048×10 linear.
KNOWN_PARAMETER_COUNTS = {
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "convnet3": (3 * 128 * 9 + 128 + 256) + 2 * (128 * 128 * 9 + 128 + 256) + 2048 * 10 + 10,
}


@pytest.mark.parametrize("name", list_models())
def test_default_config_at_32px(name):
    model = create_model(name, num_classes=10, in_channels=3, image_size=32, seed=0).eval()
    x = images(2, 3, 32)
    with torch.no_grad():
        emb = model.embed(x)
        logits = model(x)
    assert emb.shape == (2, model.embed_dim)
    assert logits.shape == (2, 10)
    assert_close_scaled(model.classify(emb), logits, rel=1e-5)
    assert model.spec["name"] == name and model.spec["image_size"] == 32
    if name in KNOWN_PARAMETER_COUNTS:
        assert count_parameters(model) == KNOWN_PARAMETER_COUNTS[name]


@pytest.mark.parametrize("name", list_models())
def test_normalisation_buffers_are_applied(name):
    c = 3
    mean, std = (0.2, 0.5, 0.7), (0.3, 0.25, 2.0)
    with_norm = small(name, in_channels=c, image_size=32, mean=mean, std=std).eval()
    plain = small(name, in_channels=c, image_size=32).eval()
    plain.load_state_dict({k: v for k, v in with_norm.state_dict().items() if k not in ("mean", "std")},
                          strict=False)
    assert with_norm.mean.shape == (1, c, 1, 1) and with_norm.std.shape == (1, c, 1, 1)
    assert torch.equal(plain.mean, torch.zeros(1, c, 1, 1)) and torch.equal(plain.std, torch.ones(1, c, 1, 1))
    assert "mean" in with_norm.state_dict() and "std" in with_norm.state_dict()
    x = images(2, c, 32)
    m = torch.tensor(mean).view(1, c, 1, 1)
    s = torch.tensor(std).view(1, c, 1, 1)
    with torch.no_grad():
        assert_close_scaled(with_norm.embed(x), plain.embed((x - m) / s))
        assert_close_scaled(with_norm(x), plain((x - m) / s))
        shift = (with_norm.embed(x) - plain.embed(x)).abs().max()
        assert shift > 1e-2 * plain.embed(x).abs().max()


def test_scalar_mean_std_broadcast_to_channels():
    model = create_model("convnet", num_classes=2, in_channels=3, image_size=16, mean=0.5, std=0.25, width=4)
    assert torch.equal(model.mean, torch.full((1, 3, 1, 1), 0.5))
    assert torch.equal(model.std, torch.full((1, 3, 1, 1), 0.25))


def test_no_model_downloads_anything(monkeypatch):
    import timm.models._builder as timm_builder
    import timm.models._hub as timm_hub
    import torch.hub

    def forbidden(*args, **kwargs):
        raise AssertionError("a model tried to download something")

    for module, names in [
        (torch.hub, ["load_state_dict_from_url", "download_url_to_file", "load"]),
        (timm_hub, ["download_cached_file", "download_from_hf", "hf_hub_download", "load_state_dict_from_hf",
                    "download_url_to_file"]),
        (timm_builder, ["load_pretrained", "load_state_dict_from_url", "load_state_dict_from_hf",
                        "download_cached_file"]),
    ]:
        for attr in names:
            if hasattr(module, attr):
                monkeypatch.setattr(module, attr, forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    for name in list_models():
        model = small(name, in_channels=3, image_size=32, num_classes=3).eval()
        with torch.no_grad():
            assert model(images(1, 3, 32)).shape == (1, 3)


# --------------------------------------------------------------------------------------------
# ConvNet
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["convnet", "convnet3"])
@pytest.mark.parametrize("in_channels,image_size", SHAPES)
def test_convnet3_embed_is_2048(name, in_channels, image_size):
    model = create_model(name, num_classes=10, in_channels=in_channels, image_size=image_size)
    assert model.embed_dim == 2048
    assert model.embed(images(2, in_channels, image_size)).shape == (2, 2048)


def test_convnet_first_conv_pads_28px_to_32():
    m28 = create_model("convnet", num_classes=2, in_channels=1, image_size=28, width=4)
    m32 = create_model("convnet", num_classes=2, in_channels=1, image_size=32, width=4)
    convs28 = [m for m in m28.modules() if isinstance(m, nn.Conv2d)]
    convs32 = [m for m in m32.modules() if isinstance(m, nn.Conv2d)]
    assert [c.padding for c in convs28] == [(3, 3), (1, 1), (1, 1)]
    assert [c.padding for c in convs32] == [(1, 1)] * 3
    assert m28.feature_shape == m32.feature_shape == (4, 4, 4)
    assert create_model("convnet4", num_classes=2, image_size=64, width=4).feature_shape == (4, 4, 4)


def test_instancenorm_convnet_uses_groupnorm_with_one_group_per_channel():
    model = create_model("convnet", num_classes=10, in_channels=3, image_size=32, width=16)
    norms = [m for m in model.modules() if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))]
    assert len(norms) == 3
    for norm in norms:
        assert isinstance(norm, nn.GroupNorm)
        assert norm.num_groups == norm.num_channels == 16
        assert norm.affine
    bn = create_model("convnet_bn", num_classes=10, image_size=32, width=16)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 3
    none = create_model("convnet", num_classes=10, image_size=32, width=16, norm="none")
    assert not any(isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)) for m in none.modules())


def naive_convnet_forward(model: models.ConvNet, x: torch.Tensor) -> torch.Tensor:
    """ConvNet-D written out by hand: explicit instance norm, ReLU, 2×2 mean pooling, linear."""
    h = (x - model.mean) / model.std
    layers = list(model.layers)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    norms = [m for m in layers if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))]
    for d, conv in enumerate(convs):
        h = F.conv2d(h, conv.weight, conv.bias, padding=conv.padding)
        if norms:
            norm = norms[d]
            if isinstance(norm, nn.GroupNorm):
                mu = h.mean(dim=(2, 3), keepdim=True)
                var = ((h - mu) ** 2).mean(dim=(2, 3), keepdim=True)
            else:  # batch norm in eval mode uses its running statistics
                mu = norm.running_mean.view(1, -1, 1, 1)
                var = norm.running_var.view(1, -1, 1, 1)
            h = (h - mu) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
        h = torch.maximum(h, torch.zeros(()))
        n, c, hh, ww = h.shape
        h = h[:, :, : hh // 2 * 2, : ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2).mean(dim=(3, 5))
    emb = h.reshape(h.shape[0], -1)
    return emb @ model.fc.weight.T + model.fc.bias


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm", "none"])
@pytest.mark.parametrize("in_channels,image_size", SHAPES)
def test_convnet_matches_naive_reference(norm, in_channels, image_size):
    model = create_model("convnet", num_classes=4, in_channels=in_channels, image_size=image_size, width=6,
                         norm=norm, mean=[0.3] * in_channels, std=[0.4] * in_channels, seed=1).eval()
    if norm == "batchnorm":
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = images(3, in_channels, image_size, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), naive_convnet_forward(model, x), rtol=1e-4, atol=1e-5)


@settings(max_examples=12, deadline=None)
@given(depth=st.integers(1, 4), width=st.integers(1, 5), image_size=st.integers(8, 40),
       in_channels=st.sampled_from([1, 3]))
def test_convnet_embed_dim_formula(depth, width, image_size, in_channels):
    effective = 32 if image_size == 28 else image_size
    if effective >> depth < 1:
        with pytest.raises(ValueError, match="depth"):
            create_model("convnet", num_classes=3, in_channels=in_channels, image_size=image_size,
                         depth=depth, width=width)
        return
    model = create_model("convnet", num_classes=3, in_channels=in_channels, image_size=image_size,
                         depth=depth, width=width)
    side = effective >> depth
    assert model.embed_dim == width * side * side
    assert model.embed(images(1, in_channels, image_size)).shape == (1, width * side * side)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(2, 5), seed=st.integers(0, 1000))
def test_instancenorm_convnet_embeds_each_sample_independently(n, seed):
    # In train mode too: instance norm has no cross-sample statistics, which DM/DREAM rely on.
    model = create_model("convnet", num_classes=3, in_channels=3, image_size=16, width=4, seed=seed).train()
    x = images(n, 3, 16, seed=seed)
    with torch.no_grad():
        batch = model.embed(x)
        single = torch.cat([model.embed(x[i:i + 1]) for i in range(n)])
    torch.testing.assert_close(batch, single, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# ResNets, DenseNet, MobileNetV2, timm models
# --------------------------------------------------------------------------------------------

def torchvision_resnet(layers, block_name: str, *, num_classes: int, in_channels: int, small_stem: bool):
    from torchvision.models.resnet import BasicBlock, Bottleneck
    from torchvision.models.resnet import ResNet as TVResNet

    net = TVResNet(BasicBlock if block_name == "basic" else Bottleneck, list(layers), num_classes=num_classes)
    if small_stem:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


@pytest.mark.parametrize("name,layers,block,in_channels,image_size", [
    ("resnet10", (1, 1, 1, 1), "basic", 1, 28),
    ("resnet18", (2, 2, 2, 2), "basic", 3, 32),
    ("resnet50", (3, 4, 6, 3), "bottleneck", 3, 32),
    ("resnet18", (2, 2, 2, 2), "basic", 3, 72),  # ImageNet stem above 64 px
])
def test_resnet_matches_torchvision(name, layers, block, in_channels, image_size):
    torch.manual_seed(0)
    reference = torchvision_resnet(layers, block, num_classes=7, in_channels=in_channels,
                                   small_stem=image_size <= 64).eval()
    ours = create_model(name, num_classes=7, in_channels=in_channels, image_size=image_size).eval()
    result = ours.load_state_dict(reference.state_dict(), strict=False)
    assert set(result.missing_keys) == {"mean", "std"} and not result.unexpected_keys
    assert count_parameters(ours) == count_parameters(reference)
    x = images(2, in_channels, image_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)


def test_resnetap10_downsamples_by_average_pooling_with_instance_norm():
    model = create_model("resnetap10", num_classes=10, in_channels=3, image_size=32, width=8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.stride == (1, 1) for c in convs)
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.modules()) == 6  # 3 stages × (branch + shortcut)
    norms = [m for m in model.modules() if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))]
    assert norms and all(isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels for m in norms)
    bn = create_model("resnetap10", num_classes=10, image_size=32, width=8, norm="batchnorm")
    assert any(isinstance(m, nn.BatchNorm2d) for m in bn.modules())


def test_resnetap_block_matches_hand_written_forward():
    model = create_model("resnetap10", num_classes=3, in_channels=3, image_size=16, width=4, seed=3).eval()
    block = model.layer2[0]
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))

    def gn(h, norm):
        mu = h.mean(dim=(2, 3), keepdim=True)
        var = h.var(dim=(2, 3), unbiased=False, keepdim=True)
        return (h - mu) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)

    def pool(h):
        n, c, s, _ = h.shape
        return h.reshape(n, c, s // 2, 2, s // 2, 2).mean(dim=(3, 5))

    branch = pool(torch.relu(gn(F.conv2d(x, block.conv1.weight, padding=1), block.bn1)))
    branch = gn(F.conv2d(branch, block.conv2.weight, padding=1), block.bn2)
    shortcut = gn(pool(F.conv2d(x, block.downsample[0].weight)), block.downsample[2])
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(branch + shortcut), rtol=1e-4, atol=1e-5)


def test_densenet121_structure():
    model = create_model("densenet121", num_classes=10, in_channels=3, image_size=32)
    assert model.embed_dim == 384
    assert model.stem[0].out_channels == 24 and model.stem[0].kernel_size == (3, 3)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    dense = [s for s in model.stages if not isinstance(s, models._Transition)]
    transitions = [s for s in model.stages if isinstance(s, models._Transition)]
    assert [len(b) for b in dense] == [6, 12, 24, 16]
    assert [t[2].out_channels for t in transitions] == [48, 96, 192]
    layer = dense[0][0]
    assert layer.conv1.out_channels == 48 and layer.conv2.out_channels == 12
    x = torch.randn(2, 24, 8, 8)
    out = layer.eval()(x)
    assert out.shape == (2, 36, 8, 8)
    torch.testing.assert_close(out[:, :24], x)


def test_mobilenetv2_is_adapted_to_small_images():
    model = create_model("mobilenetv2", num_classes=10, in_channels=1, image_size=32).eval()
    assert model.net.features[0][0].in_channels == 1 and model.net.features[0][0].stride == (1, 1)
    with torch.no_grad():
        fmap = model.net.features(model.normalize(images(1, 1, 32)))
    assert fmap.shape[-2:] == (4, 4) and model.embed_dim == 1280
    big = create_model("mobilenetv2", num_classes=10, image_size=96, width_mult=0.25).eval()
    with torch.no_grad():
        assert big.net.features(images(1, 3, 96)).shape[-2:] == (3, 3)


@pytest.mark.parametrize("name,image_size,padded", [
    ("vit", 28, 28), ("vit", 32, 32), ("vit", 64, 64),
    ("swin", 28, 32), ("swin", 32, 32), ("swin", 64, 64),
    ("convnext", 28, 32), ("convnext", 32, 32), ("convnext", 64, 64),
])
def test_timm_models_pad_only_when_needed(name, image_size, padded):
    model = small(name, in_channels=3, image_size=image_size)
    assert model.padded_size == padded
    assert model.embed(images(1, 3, image_size)).shape == (1, model.embed_dim)


def test_swin_padded_size_keeps_windows_whole():
    for image_size, patch, window, stages in [(28, 2, 4, 3), (40, 2, 4, 3), (224, 4, 7, 4), (50, 4, 4, 3)]:
        size = models._swin_padded_size(image_size, patch, window, stages)
        assert size >= image_size
        grids = [size / (patch * 2 ** i) for i in range(stages)]
        assert all(g == int(g) and (g <= window or g % window == 0) for g in grids)
        # and it is the smallest such size
        smaller = [s for s in range(image_size, size)
                   if all((s / (patch * 2 ** i)).is_integer() and (s // (patch * 2 ** i) <= window
                          or (s // (patch * 2 ** i)) % window == 0) for i in range(stages))]
        assert not smaller


@pytest.mark.parametrize("name", [n for n in list_models() if not n.startswith("convnet")])
def test_large_image_stems(name):
    # Above 64 px the ResNets/DenseNet/MobileNetV2 switch to ImageNet-style strided stems and the
    # timm models to their larger patch/window defaults (Swin pads 96 → 112 for window 7).
    model = small(name, in_channels=3, image_size=96).eval()
    with torch.no_grad():
        emb = model.embed(images(1, 3, 96))
        assert emb.shape == (1, model.embed_dim)
        assert model.classify(emb).shape == (1, 5)
    if name == "swin":
        assert model.padded_size == 112
    if name == "resnetap10":
        assert isinstance(model.stem_pool, nn.AvgPool2d) and model.conv1.stride == (1, 1)


def test_vit_unfused_attention_matches_fused_and_supports_double_backward():
    fused = small("vit", in_channels=3, image_size=32).eval()
    plain = small("vit", in_channels=3, image_size=32, fused_attn=False).eval()
    assert any(getattr(m, "fused_attn", None) is False for m in plain.modules())
    x = images(2, 3, 32)
    with torch.no_grad():
        assert_close_scaled(plain(x), fused(x))
    # gradient matching differentiates a parameter gradient with respect to the input images
    x.requires_grad_(True)
    loss = F.cross_entropy(plain(x), torch.tensor([0, 1]))
    grads = torch.autograd.grad(loss, list(plain.parameters()), create_graph=True)
    sum(g.square().sum() for g in grads).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_timm_head_is_the_final_linear_layer():
    for name in ("vit", "swin", "convnext"):
        model = small(name, in_channels=3, image_size=32)
        head = model.net.get_classifier()
        assert isinstance(head, nn.Linear) and head.in_features == model.embed_dim
        assert head.out_features == model.num_classes


# --------------------------------------------------------------------------------------------
# Seeds, helpers, errors
# --------------------------------------------------------------------------------------------

def test_seed_makes_initialisation_reproducible_without_touching_global_rng():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = create_model("resnet10", num_classes=3, width=8, seed=5)
    after = torch.rand(3)
    torch.testing.assert_close(before, after)
    b = create_model("resnet10", num_classes=3, width=8, seed=5)
    c = create_model("resnet10", num_classes=3, width=8, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_count_parameters():
    model = create_model("convnet", num_classes=10, in_channels=3, image_size=32, width=8)
    expected = sum(p.numel() for p in model.parameters())
    conv_w = 8 * 3 * 9 + 8 + 8 + 8 + 2 * (8 * 8 * 9 + 8 + 8 + 8)
    assert expected == conv_w + 8 * 4 * 4 * 10 + 10
    assert count_parameters(model) == expected
    model.fc.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == expected - 8 * 4 * 4 * 10


def test_model_kwargs_lists_model_specific_arguments():
    assert set(model_kwargs("convnet")) == {"depth", "width", "norm", "act", "pooling"}
    assert "depth" not in model_kwargs("convnet3")
    assert model_kwargs("resnetap10")["norm"] == "instancenorm"


def test_unknown_name_lists_available_models():
    with pytest.raises(ValueError, match="unknown model") as err:
        create_model("resnet1000", num_classes=10)
    for name in ("convnet", "resnet18", "vit"):
        assert name in str(err.value)


@pytest.mark.parametrize("image_size", [7, 0, -3])
def test_bad_image_size(image_size):
    with pytest.raises(ValueError, match="image_size"):
        create_model("convnet", num_classes=10, image_size=image_size)


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="convnet", num_classes=10, widht=3), "widht"),
    (dict(name="convnet3", num_classes=10, depth=4), "depth"),
    (dict(name="convnet", num_classes=10, norm="layernorm"), "norm"),
    (dict(name="convnet", num_classes=10, act="gelu"), "act"),
    (dict(name="convnet", num_classes=10, image_size=16, depth=5), "depth"),
    (dict(name="resnet18", num_classes=0), "num_classes"),
    (dict(name="resnet18", num_classes=10, in_channels=0), "in_channels"),
    (dict(name="resnet18", num_classes=10, norm="groupnorm"), "norm"),
    (dict(name="convnet", num_classes=10, in_channels=3, mean=(0.1, 0.2)), "mean"),
    (dict(name="convnet", num_classes=10, std=(1.0, 0.0, 1.0)), "std"),
    (dict(name="convnet", num_classes=10, std=-1.0), "std"),
    (dict(name="densenet121", num_classes=10, compression=0.0), "compression"),
    (dict(name="densenet121", num_classes=10, block_config=(6, 0)), "block_config"),
    (dict(name="vit", num_classes=10, embed_dim=10, num_heads=3), "num_heads"),
    (dict(name="swin", num_classes=10, depths=(2, 2), num_heads=(3, 6, 12)), "num_heads"),
    (dict(name="convnext", num_classes=10, dims=(8, 16, 32)), "dims"),
    (dict(name="mobilenetv2", num_classes=10, drop_rate=1.5), "drop_rate"),
    (dict(name="convnet", num_classes=10, seed=-1), "seed"),
    (dict(name="vit", num_classes=10, fused_attn="no"), "fused_attn"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        create_model(name, **kwargs)


def test_wrong_input_shape_is_reported():
    model = create_model("convnet", num_classes=3, in_channels=1, image_size=28, width=4)
    with pytest.raises(ValueError, match=r"expected \(N, 1, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="does not fit"):
        model(torch.rand(2, 1, 32, 32))


def test_register_model_rejects_duplicates_and_bad_builders():
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("convnet")(lambda **kw: None)
    with pytest.raises(ValueError, match="must accept"):
        models.register_model("test_bad_builder")(lambda *, num_classes: None)
    assert "test_bad_builder" not in list_models()


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 2, 17, 20), (3, 1, 32, 33), (2, 2, 8, 8), (1, 1, 5, 7)])
def test_avgpool2x2_is_the_pooling_kernel_up_to_rounding(shape):
    """AvgPool2x2 (matrix products on CPU maps of side >= 16, the kernel below) against F.avg_pool2d: values,
    gradients and second derivatives (the matching losses differentiate through it twice)."""
    from dscore.models import AvgPool2x2

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(*shape[:2], shape[2] // 2, shape[3] // 2, generator=gen, dtype=torch.float64)
    pool = AvgPool2x2()
    ours, ref = pool(x), torch.nn.functional.avg_pool2d(x, 2)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    (g_ours,) = torch.autograd.grad((ours * w).sum() ** 2, x, create_graph=True)
    (g_ref,) = torch.autograd.grad((ref * w).sum() ** 2, x, create_graph=True)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=1e-12)
    (h_ours,) = torch.autograd.grad(g_ours.square().sum(), x)
    (h_ref,) = torch.autograd.grad(g_ref.square().sum(), x)
    torch.testing.assert_close(h_ours, h_ref, rtol=1e-12, atol=1e-12)


def test_avgpool2x2_float32_error_is_what_its_docstring_states():
    from dscore.models import AvgPool2x2

    x = torch.rand(4, 16, 32, 32, generator=torch.Generator().manual_seed(1))
    assert (AvgPool2x2()(x) - torch.nn.functional.avg_pool2d(x, 2)).abs().max() <= 2.4e-7
