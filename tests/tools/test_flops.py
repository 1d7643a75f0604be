"""Cost accounting: multiply-adds against the paper, the complexity formulas, params, `swinref info`."""

from __future__ import annotations

import argparse
import io

import pytest

import swinref
from swinref.cli.info import register, render_info
from swinref.models.v1 import SHORT_NAMES, SwinConfig
from swinref.tools.flops import (
    COMPONENTS,
    PAPER_GFLOPS,
    count_flops,
    global_msa_flops,
    window_msa_flops,
)


@pytest.mark.parametrize("name", sorted(PAPER_GFLOPS))
def test_total_rounds_to_the_paper(name):
    # the paper prints one decimal, so the rounded total must be equal, not close
    got = round(count_flops(SwinConfig.named(name)).gflops, 1)
    assert got == PAPER_GFLOPS[name], f"{name}: expected {PAPER_GFLOPS[name]} G, got {got} G"


def test_norms_are_counted_only_on_request():
    cfg = SwinConfig.named("swin_t")
    bare, with_norms = count_flops(cfg), count_flops(cfg, include_norms=True)
    assert bare.by_component()["norm"] == 0, f"expected no norm MACs, got {bare.by_component()['norm']}"
    # one MAC per LayerNorm element: patch norm 56*56*96, per block 2*h*w*C, merges h*w*4C, final norm
    expected = (
        56 * 56 * 96
        + sum(d * 2 * (56 >> i) ** 2 * 96 * 2**i for i, d in enumerate(cfg.depths))
        + sum((56 >> i) ** 2 * 4 * 96 * 2 ** (i - 1) for i in (1, 2, 3))
        + 7 * 7 * 768
    )
    got = with_norms.by_component()["norm"]
    assert got == expected, f"expected {expected} norm MACs, got {got}"
    assert with_norms.total - bare.total == expected, "norms must be the only difference"


def test_formulas_for_swin_t_first_stage():
    # the paper's worked example: h = w = 56, C = 96, M = 7 -> about 2.0 G (global) and 145 M (window)
    g, w = global_msa_flops(56, 56, 96), window_msa_flops(56, 56, 96, 7)
    assert g == 4 * 56 * 56 * 96**2 + 2 * (56 * 56) ** 2 * 96, f"global MSA formula gave {g}"
    assert round(g / 1e9, 1) == 2.0, f"expected about 2.0 G, got {g / 1e9:.4f} G"
    assert round(w / 1e6) == 145, f"expected about 145 M, got {w / 1e6:.3f} M"


@pytest.mark.parametrize("name", ["swin_t", "swin_b_384"])
def test_one_attention_layer_matches_the_window_formula(name):
    # the counted qkv + qk + av + proj of one block, summed over a stage, is depth x the formula
    cfg = SwinConfig.named(name)
    report = count_flops(cfg)
    M = cfg.window[0]
    h = cfg.image_hw[0] // cfg.patch_size
    for i, depth in enumerate(cfg.depths):
        res = h >> i
        rows = [r for r in report.rows if r[0] == f"stage {i}" and r[1].startswith("attn.")]
        counted = sum(m for _, _, m in rows)
        M_eff = min(M, res)  # the last stage at 224 is one 7x7 window
        expected = depth * window_msa_flops(res, res, cfg.stage_dim(i), M_eff)
        assert counted == expected, f"{name} stage {i}: expected {expected} attention MACs, got {counted}"


def test_window_attention_is_linear_and_global_quadratic_in_tokens():
    for side in (56, 112):
        ratio_w = window_msa_flops(2 * side, 2 * side, 96, 7) / window_msa_flops(side, side, 96, 7)
        assert ratio_w == 4.0, f"window MSA: 4x tokens should cost 4x, got {ratio_w}x"
        ratio_g = global_msa_flops(2 * side, 2 * side, 96) / global_msa_flops(side, side, 96)
        assert ratio_g > 15.0, f"global MSA: 4x tokens should cost nearly 16x, got {ratio_g:.2f}x"


def test_report_sums_agree():
    report = count_flops(SwinConfig.named("swin_s"), include_norms=True)
    assert set(report.by_component()) == set(COMPONENTS), f"components {sorted(report.by_component())}"
    for parts in (report.by_component(), report.by_group()):
        assert sum(parts.values()) == report.total, f"parts sum {sum(parts.values())} != total {report.total}"
    groups = list(report.by_group())
    assert groups == ["patch_embed", "stage 0", "stage 1", "stage 2", "stage 3", "head"], f"groups {groups}"


def test_headless_config_has_no_classifier_macs():
    cfg = SwinConfig.named("swin_t", num_classes=0)
    assert count_flops(cfg).by_component()["head"] == 0, "num_classes=0 must count no classifier"
    diff = count_flops(SwinConfig.named("swin_t")).total - count_flops(cfg).total
    assert diff == 768 * 1000, f"the classifier is 768 x 1000 MACs, got {diff}"


@pytest.mark.parametrize("name", ["swin_t", "swin_s", "swin_b", "swin_l"])
def test_params_match_count_params_and_the_spec(name):
    expected = {"swin_t": 28_288_354, "swin_s": 49_606_258, "swin_b": 87_768_224, "swin_l": 196_532_476}[
        name
    ]  # measured on timm 1.0.31 (and torchvision 0.29.1, identical)
    got = swinref.count_params(SwinConfig.named(name))
    assert got == expected, f"{name}: expected {expected:,} params, got {got:,}"


def _info_total(name):
    """The total line `swinref info` must print, from the count itself."""
    report = count_flops(SwinConfig.named(name))
    full = SHORT_NAMES.get(name, name)
    return f"total: {report.gflops:.2f} G multiply-adds (rounded {report.gflops:.1f} G); paper: {PAPER_GFLOPS[full]:.1f} G"


def test_info_prints_params_table_and_paper():
    from rich.console import Console

    buf = io.StringIO()
    render_info("swin_t", console=Console(file=buf, width=160))
    text = buf.getvalue()
    params = swinref.count_params(SwinConfig.named("swin_t"))
    for needle in (f"params: {params:,}", "stage 3", "attn.qkv", _info_total("swin_t")):
        assert needle in text, f"expected {needle!r} in the info output, got:\n{text}"


def test_info_command_registers_and_rejects_unknown_names(capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["info", "swin_b_384"])
    assert args.func(args) == 0, "info should succeed on a zoo name"
    out = capsys.readouterr().out
    assert _info_total("swin_b_384") in out, f"expected the counted total next to the paper's, got:\n{out}"
    with pytest.raises(ValueError, match="unknown model 'swin_x'"):
        args.func(parser.parse_args(["info", "swin_x"]))


def test_every_short_name_has_a_paper_number():
    missing = [n for n, full in SHORT_NAMES.items() if full not in PAPER_GFLOPS]
    assert not missing, f"expected a paper GFLOPs entry for every zoo model, missing {missing}"
