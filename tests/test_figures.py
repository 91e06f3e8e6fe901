"""What the figures show: epoch axes that stay at or right of the first epoch, and at-chance checkpoints
drawn apart from the points a trend weighs."""
from __future__ import annotations

import matplotlib.collections
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from clipalign_utils.metrics.noise import checkpoint_summary
from clipalign_utils.plots import common, noise, shape_bias, tradeoff

EPOCHS = [0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 5.0]


def _left(ax) -> float:
    ax.figure.canvas.draw()
    return ax.get_xlim()[0]


def test_a_log_epoch_axis_ends_a_sliver_left_of_the_first_epoch():
    fig, ax = plt.subplots()
    ax.plot(EPOCHS, np.linspace(0, 1, len(EPOCHS)))
    common.epoch_axis(ax, EPOCHS, log_x=True)
    ax.plot([0.0, 5.0], [2.0, 2.0])  # drawn after: the limits hold
    assert ax.get_xscale() == "symlog"
    assert ax.get_xlim() == pytest.approx((-0.15 * 0.125, 5.0 * 1.25))
    plt.close(fig)
    # A run that starts after 0 (a public trajectory's first epoch) keeps a sliver left of its start.
    fig, ax = plt.subplots()
    common.epoch_axis(ax, [1.0, 2.0, 32.0], log_x=True)
    assert ax.get_xlim() == pytest.approx((0.85, 40.0))
    plt.close(fig)


def _noise_table() -> pd.DataFrame:
    rows = []
    for epoch, clean, noisy in [(0.0, 0.125, 0.125), (1.0, 0.5, 0.4), (2.0, 0.7, 0.5), (5.0, 0.8, 0.6)]:
        lo = clean - 0.05 if epoch else 0.1
        rows.append(dict(checkpoint=f"epoch_{epoch:g}", epoch=epoch, sigma=0.0, accuracy=clean, lo=lo,
                         hi=clean + 0.05, normalized_drop=0.0))
        rows.append(dict(checkpoint=f"epoch_{epoch:g}", epoch=epoch, sigma=0.2, accuracy=noisy, lo=noisy - 0.05,
                         hi=noisy + 0.05, normalized_drop=(clean - noisy) / clean))
    return pd.DataFrame(rows)


def test_figures_with_an_epoch_axis_do_not_reach_into_negative_epochs():
    table = _noise_table()
    summary = checkpoint_summary(table, chance=0.125)
    shapes = pd.DataFrame({"epoch": [0.0, 1.0, 2.0, 5.0], "shape_bias": 0.5, "lo": 0.4, "hi": 0.6})
    for fig in (noise.drop_vs_epoch(table, summary), noise.accuracy_vs_epoch(table, 0.125),
                shape_bias.shape_bias_curve(shapes)):
        assert _left(fig.axes[0]) == pytest.approx(-0.15)
        plt.close(fig)


def test_the_noise_drop_figure_draws_no_drop_at_an_at_chance_checkpoint():
    table = _noise_table()
    summary = checkpoint_summary(table, chance=0.125)
    assert summary["clean_at_chance"].tolist() == [True, False, False, False]
    assert np.isnan(summary["mean_normalized_drop"].iloc[0])  # undefined, not the 0 the arithmetic gives
    fig = noise.drop_vs_epoch(table.assign(clean_at_chance=table["epoch"] == 0), summary)
    ax = fig.axes[0]
    sigma_line = next(line for line in ax.get_lines() if line.get_label() == "σ = 0.2")
    assert list(sigma_line.get_xdata()) == [1.0, 2.0, 5.0]
    cross = next(c for c in ax.collections if c.get_label() == "clean accuracy at chance (drop undefined)")
    assert cross.get_offsets().tolist() == [[0.0, 0.0]]
    plt.close(fig)


def test_the_noise_drop_figure_bands_the_mean_drop_with_its_interval():
    table = _noise_table()
    bounds = {"epoch_1": (0.1, 0.3), "epoch_2": (0.2, 0.35), "epoch_5": (0.15, 0.3), "epoch_0": (0.0, 0.1)}
    table["mean_normalized_drop_lo"] = table["checkpoint"].map(lambda c: bounds[c][0])
    table["mean_normalized_drop_hi"] = table["checkpoint"].map(lambda c: bounds[c][1])
    summary = checkpoint_summary(table, chance=0.125)
    # at chance (epoch 0): no drop, so no interval either
    assert np.isnan(summary[["mean_normalized_drop_lo", "mean_normalized_drop_hi"]].iloc[0]).all()
    fig = noise.drop_vs_epoch(table, summary)
    ax = fig.axes[0]
    band, = [c for c in ax.collections if isinstance(c, matplotlib.collections.FillBetweenPolyCollection)]
    vertices = np.concatenate([path.vertices for path in band.get_paths()])
    assert vertices[:, 0].min() == 1.0  # begins at the first checkpoint above chance
    assert (vertices[:, 1].min(), vertices[:, 1].max()) == (0.1, 0.35)
    assert any(line.get_label() == "mean over σ (95% CI)" for line in ax.get_lines())
    plt.close(fig)
    fig = noise.drop_vs_epoch(_noise_table(), checkpoint_summary(_noise_table(), chance=0.125))
    assert not [c for c in fig.axes[0].collections if isinstance(c, matplotlib.collections.FillBetweenPolyCollection)]
    plt.close(fig)


def _means() -> pd.DataFrame:
    return pd.DataFrame({"scale": "tiny", "epoch": [0.0, 1.0, 2.0, 5.0], "n_seeds": 3,
                         "iqa_srcc": [0.3, 0.5, 0.55, 0.5], "shape_bias": [0.5, 0.3, 0.4, 0.45],
                         "noise_drop": [0.05, 0.2, 0.3, 0.35], "at_chance": [True, False, False, False],
                         "checkpoint": ["epoch_0", "epoch_1", "epoch_2", "epoch_5"]})


def test_the_plane_and_the_relations_draw_at_chance_checkpoints_hollow():
    means = _means()
    fig = tradeoff.alignment_robustness_plane(means, np.array([False, True, True, False]), {})
    ax = fig.axes[0]
    filled, hollow = ax.collections[0], next(c for c in ax.collections
                                              if c.get_label() == "clean accuracy at chance (left out)")
    assert filled.get_offsets()[:, 0].tolist() == [0.5, 0.55, 0.5]
    assert hollow.get_offsets().tolist() == [[0.3, 0.95]] and len(hollow.get_facecolor()) == 0
    plt.close(fig)
    relations = pd.DataFrame({"scale": "tiny", "x": ["iqa_srcc"], "y": ["noise_drop"], "spearman": [0.5],
                              "p_value": [0.4]})
    fig = tradeoff.relation_panels(means, relations)
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets()[:, 0].tolist() == [0.5, 0.55, 0.5]
    assert ax.collections[1].get_label() == "tiny: at chance (left out)"
    assert ax.collections[1].get_offsets().tolist() == [[0.3, 0.05]]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("IQA alignment (SRCC)", "normalized noise drop (mean over σ)")
    plt.close(fig)


def test_the_summary_figure_keeps_at_chance_checkpoints_off_the_classification_lines():
    means = _means()
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
    noise_means = pd.DataFrame({"scale": "tiny", "sigma": 0.0, "epoch": means["epoch"], "accuracy": 0.5,
                                "accuracy_lo": 0.4, "accuracy_hi": 0.6})
    fig = tradeoff.summary_figure(means, noise_means)
    iqa, texture, drop = fig.axes[1:4]
    assert list(iqa.get_lines()[0].get_xdata()) == [0.0, 1.0, 2.0, 5.0]  # not a classification measure
    for ax, first in ((texture, 0.5), (drop, 0.05)):
        assert list(ax.get_lines()[0].get_xdata()) == [1.0, 2.0, 5.0]
        hollow = next(c for c in ax.collections if c.get_label() == "tiny: at chance (left out)")
        assert hollow.get_offsets().tolist() == [[0.0, first]]
    plt.close(fig)


def test_the_summary_figure_has_one_legend_under_its_panels_covering_none():
    """Page 6 drew one legend per panel; with a sweep's eleven settings they covered the curves (a reader)."""
    means = pd.concat([_means().assign(scale=f"setting {k}") for k in range(11)], ignore_index=True)
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
    noise_means = pd.concat([pd.DataFrame({"scale": f"setting {k}", "sigma": sigma, "epoch": [0.0, 1.0],
                                           "accuracy": 0.5, "accuracy_lo": 0.4, "accuracy_hi": 0.6})
                             for k in range(11) for sigma in (0.0, 0.1)], ignore_index=True)
    fig = tradeoff.summary_figure(means, noise_means)
    assert all(ax.get_legend() is None for ax in fig.axes)
    legend, = fig.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels[:2] == ["setting 0 (3 seeds)", "setting 1 (3 seeds)"] and len(labels) == 11 + 2 + 1
    assert labels[11:] == ["(a) clean", "(a) σ=0.1", "(c), (d): at chance, left out of the trend"]
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert all(box.y1 < ax.get_tightbbox().y0 for ax in fig.axes)  # below every panel, its labels included
    plt.close(fig)
