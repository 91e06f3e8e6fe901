"""What the figures show: epoch axes that stay at or right of the first epoch, and at-chance checkpoints
drawn apart from the points a trend weighs."""
from __future__ import annotations

import matplotlib.collections
import matplotlib.container
import matplotlib.colors
import matplotlib.text
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from clipalign_utils.metrics.noise import checkpoint_summary
from clipalign_utils.plots import common, interpolation, iqa, mechanism, noise, saliency, shape_bias, tradeoff, two_afc

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


def test_the_noise_drop_figure_names_no_mean_or_interval_it_does_not_draw():
    table = _noise_table().assign(clean_at_chance=True)
    summary = checkpoint_summary(table, chance=0.125).assign(clean_at_chance=True, mean_normalized_drop=np.nan,
                                                             mean_normalized_drop_lo=np.nan,
                                                             mean_normalized_drop_hi=np.nan)
    fig = noise.drop_vs_epoch(table, summary)  # every checkpoint at chance: no mean, no band
    assert _legend(fig.axes[0]) == ["clean accuracy at chance (drop undefined)"]
    plt.close(fig)
    lone = summary.assign(clean_at_chance=summary["epoch"] < 5)
    lone.loc[lone["epoch"] == 5, ["mean_normalized_drop", "mean_normalized_drop_lo", "mean_normalized_drop_hi"]] = 0.2
    fig = noise.drop_vs_epoch(table.assign(clean_at_chance=table["epoch"] < 5), lone)  # one point: no band to see
    assert "mean over σ" in _legend(fig.axes[0])
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


def test_a_legend_names_only_the_marks_its_panel_draws_where_nearly_every_checkpoint_is_at_chance():
    """An audit of a smoke book (every checkpoint at chance on the cue-conflict images, all but the last on clean
    images too, their drops undefined): the relations named a filled point where every point was hollow, and a
    hollow one where each at-chance drop is NaN; the shape-bias curve named a band and a line, neither drawn; the
    plane named a Pareto front of one checkpoint, which draws no line."""
    means = _means().assign(at_chance=[True, True, True, False], shape_at_chance=True,
                            noise_drop=[np.nan, np.nan, np.nan, 0.0])
    relations = pd.DataFrame({"scale": "tiny", "x": ["iqa_srcc", "iqa_srcc", "texture_bias"],
                              "y": ["texture_bias", "noise_drop", "noise_drop"], "spearman": np.nan,
                              "p_value": np.nan, "n": [0, 1, 0]})
    fig = tradeoff.relation_panels(means, relations)
    assert [_legend(ax) for ax in fig.axes] == [["tiny: at chance (left out)"], ["tiny"],
                                                ["tiny: at chance (left out)"]]
    plt.close(fig)
    table = pd.DataFrame({"epoch": [0.0, 1.0], "shape_bias": [0.5, 0.45], "lo": [0.3, 0.3], "hi": [0.7, 0.6],
                          "shape_at_chance": True})
    fig = shape_bias.shape_bias_curve(table)
    assert _figure_legend(fig) == ["at chance on the cue-conflict images (left out)", "no preference"]
    plt.close(fig)
    fig = tradeoff.alignment_robustness_plane(means, np.array([False, False, False, True]), {"tiny": 3})
    assert _legend(fig.axes[0]) == ["3 checkpoints at chance: no drop, not drawn", "selected: epoch_5"]
    plt.close(fig)


def test_a_plane_or_relation_without_a_point_says_why_it_is_empty():
    """A streamed trajectory of random weights: every checkpoint at chance on clean images, no drop anywhere;
    the plane and the drop's relations were blank axes that read as figures that failed to draw."""
    means = _means().assign(at_chance=True, noise_drop=np.nan)
    fig = tradeoff.alignment_robustness_plane(means, np.array([False] * 4), {})
    assert [t.get_text() for t in fig.axes[0].texts] == ["no checkpoint to place:\nnone has both an SRCC and a drop"]
    assert len(fig.axes) == 1  # no colour bar of epochs beside no point
    plt.close(fig)
    relations = pd.DataFrame({"scale": "tiny", "x": ["iqa_srcc", "iqa_srcc"], "y": ["texture_bias", "noise_drop"],
                              "spearman": [0.1, np.nan], "p_value": [0.9, np.nan], "n": [4, 0]})
    fig = tradeoff.relation_panels(means, relations)
    assert [[t.get_text() for t in ax.texts] for ax in fig.axes] == [[], ["no checkpoint has both measures"]]
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


def test_a_many_setting_summary_figure_outlines_each_interval_rather_than_stacking_translucent_fills():
    """An audit: a sweep's ten settings, all at chance at epoch 0 (the sigmas settings' clean accuracy the base
    run's), stacked their translucent bands into dark ones of no setting's colour; each interval is now its
    own outline, in its setting's colour, at its own bounds. Few groups keep their filled bands."""
    groups = [f"s{k}" for k in range(tradeoff.OUTLINED_GROUPS)]

    def figure(groups):
        means = pd.concat([_means().assign(scale=g, at_chance=False) for g in groups], ignore_index=True)
        for column in ("iqa_srcc", "shape_bias", "noise_drop"):
            means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
        noise_means = pd.DataFrame({"scale": np.repeat(groups, 4), "sigma": 0.0, "epoch": [0.0, 1.0, 2.0, 5.0] * len(
            groups), "accuracy": 0.5, "accuracy_lo": 0.4, "accuracy_hi": 0.6})
        return tradeoff.summary_figure(means, noise_means, clean_only=True)

    fig = figure(groups)
    colours = tradeoff.group_colors(groups)
    for ax in fig.axes[:4]:
        bands = _bands(ax)
        assert len(bands) == len(groups)
        for band, group in zip(bands, groups):
            assert len(band.get_facecolor()) == 0 or band.get_facecolor()[0][3] == 0  # no fill to stack
            assert matplotlib.colors.to_hex(band.get_edgecolor()[0], keep_alpha=False) == matplotlib.colors.to_hex(
                colours[group])
    assert _bounds(_bands(fig.axes[0])[0]) == {0.0: (0.4, 0.6), 1.0: (0.4, 0.6), 2.0: (0.4, 0.6), 5.0: (0.4, 0.6)}
    plt.close(fig)
    fig = figure(groups[:1])
    assert all(_bands(ax)[0].get_facecolor()[0][3] > 0 for ax in fig.axes[:4])
    plt.close(fig)


def test_at_chance_checkpoints_without_a_value_are_still_shown_as_such():
    """An audit: a drop is undefined where the clean accuracy is at chance, so the hollow points promised for
    those checkpoints were never drawn (a smoke run's plane showed 1 of its 6 checkpoints and did not say so),
    and page 3 drew checkpoints at chance on the cue-conflict images on its shape-bias line."""
    means = _means().assign(at_chance=[True, True, False, False], noise_drop=[np.nan, np.nan, 0.3, 0.35])
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
    fig = tradeoff.alignment_robustness_plane(means, np.array([False, False, True, True]), {})
    ax = fig.axes[0]
    assert "2 checkpoints at chance: no drop, not drawn" in _legend(ax)
    assert "clean accuracy at chance (left out)" not in _legend(ax)  # nothing hollow to point at
    plt.close(fig)
    noise_means = pd.DataFrame({"scale": "tiny", "sigma": 0.0, "epoch": means["epoch"], "accuracy": 0.5,
                                "accuracy_lo": 0.4, "accuracy_hi": 0.6})
    fig = tradeoff.summary_figure(means, noise_means)
    drop = fig.axes[3]
    crosses, = [c for c in drop.collections if c.get_offsets().size and not isinstance(
        c, matplotlib.collections.FillBetweenPolyCollection)]
    assert crosses.get_offsets().tolist() == [[0.0, 0.0], [1.0, 0.0]]  # no drop of about 0 at their epochs
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels[-1] == "(d) on 0: clean accuracy at chance, drop undefined"
    plt.close(fig)
    table = pd.DataFrame({"epoch": [1.0, 0.0, 2.0], "shape_bias": [0.45, 0.5, 0.7], "lo": [0.3, 0.4, 0.6],
                          "hi": [0.6, 0.6, 0.8], "shape_at_chance": [True, True, False]})
    fig = shape_bias.shape_bias_curve(table)
    ax = fig.axes[0]
    assert list(_line(ax, "model").get_xdata()) == [2.0]
    hollow, = [c for c in ax.collections if c.get_label() == "at chance on the cue-conflict images (left out)"]
    assert hollow.get_offsets().tolist() == [[0.0, 0.5], [1.0, 0.45]] and len(hollow.get_facecolor()) == 0
    plt.close(fig)


def test_the_crosses_of_undefined_drops_lie_beneath_every_defined_point():
    """A reader: on a sweep's panel (d) one setting's cross on 0 hid the other setting's defined drop of 0.0 at
    the same epoch; the crosses go beneath the lines' points and the hollow ones, their legend entry kept."""
    fig, drop, crosses, hollow = _undefined_and_defined_drops_of_0()
    assert hollow.get_offsets().tolist() == [[0.0, 0.0]]
    assert crosses.get_zorder() < min(hollow.get_zorder(), *(line.get_zorder() for line in drop.get_lines()))
    assert _figure_legend(fig)[-1] == "(d) below the drops: clean accuracy at chance, drop undefined"
    plt.close(fig)


def test_the_crosses_of_undefined_drops_touch_no_defined_point():
    """An audit: beneath it or not, a cross on 0 and another group's hollow point of 0 at its epoch (an at-chance
    drop is near 0) read as one blot. The crosses keep their epochs in a row below every drawn drop, clear of
    every point by their half-widths."""
    fig, drop, crosses, hollow = _undefined_and_defined_drops_of_0()
    assert crosses.get_offsets()[:, 0].tolist() == [0.0, 1.0]
    fig.canvas.draw()
    points = [np.asarray(hollow.get_offsets())] + [line.get_xydata() for line in drop.get_lines()]
    points = drop.transData.transform(np.concatenate(points))
    point_radius = max(np.sqrt(hollow.get_sizes()).max(), max(line.get_markersize() for line in drop.get_lines())) / 2
    clearance = (np.sqrt(crosses.get_sizes()).max() / 2 + point_radius) * fig.dpi / 72  # points to pixels
    for cross in drop.transData.transform(crosses.get_offsets()):
        assert np.abs(points - cross).max(axis=1).min() > clearance
    assert drop.get_ylim()[0] < crosses.get_offsets()[:, 1].min()  # inside the panel
    plt.close(fig)


def test_no_tick_names_the_row_of_crosses_below_the_drops():
    """A smoke sweep's crosses lay on its one tick below 0, −0.05, and read as drops of −0.05 (one setting's drop
    of 0 at the last epoch, the other's undefined there): the row beneath the drops is no value, so no tick is
    labelled below the lowest drawn drop."""
    undefined = _means().assign(scale="a", at_chance=True, noise_drop=np.nan)
    defined = _means().assign(scale="b", at_chance=[True, True, True, False], noise_drop=[np.nan] * 3 + [0.0])
    means = pd.concat([undefined, defined], ignore_index=True)
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column], means[column]
    noise_means = pd.DataFrame({"scale": ["a"] * 4 + ["b"] * 4, "sigma": 0.0, "epoch": means["epoch"],
                                "accuracy": 0.1, "accuracy_lo": 0.05, "accuracy_hi": 0.15})
    fig = tradeoff.summary_figure(means, noise_means)
    drop = fig.axes[3]
    fig.canvas.draw()
    crosses = np.concatenate([c.get_offsets() for c in drop.collections  # each setting's
                              if isinstance(c, matplotlib.collections.PathCollection) and c.get_label().startswith("_")])
    bottom, top = drop.get_ylim()
    shown = [tick for tick in drop.get_yticks() if bottom <= tick <= top]
    assert shown and min(shown) >= 0 > crosses[:, 1].max() and crosses[:, 1].min() > bottom
    assert _figure_legend(fig)[-1] == "(d) below the drops: clean accuracy at chance, drop undefined"
    plt.close(fig)


def test_the_crosses_lie_on_0_beside_a_drop_of_0_at_another_epoch():
    """A smoke book: five crosses in a row at −0.05, the axis's one tick below 0, beside the one defined drop, 0.0
    at the last epoch, read as five drops of −0.05; nothing lies at their epochs, so they lie on 0."""
    means = _means().assign(at_chance=[True, True, True, False], noise_drop=[np.nan, np.nan, np.nan, 0.0])
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column], means[column]
    noise_means = pd.DataFrame({"scale": "tiny", "sigma": 0.0, "epoch": means["epoch"], "accuracy": 0.1,
                                "accuracy_lo": 0.05, "accuracy_hi": 0.15})
    fig = tradeoff.summary_figure(means, noise_means)
    crosses, = [c for c in fig.axes[3].collections
                if isinstance(c, matplotlib.collections.PathCollection) and c.get_label().startswith("_")]
    assert crosses.get_offsets().tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]
    assert _figure_legend(fig)[-1] == "(d) on 0: clean accuracy at chance, drop undefined"
    plt.close(fig)


def test_the_crosses_of_a_panel_without_a_defined_drop_lie_on_0():
    """A smoke run's every checkpoint at chance: its crosses in a row at −0.05, alone on the panel, read as drops
    of −0.05; with no drop to keep clear of, they lie on 0, as page 4 draws them."""
    means = _means().assign(at_chance=True, noise_drop=np.nan)
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
    noise_means = pd.DataFrame({"scale": "tiny", "sigma": 0.0, "epoch": means["epoch"], "accuracy": 0.1,
                                "accuracy_lo": 0.05, "accuracy_hi": 0.15})
    fig = tradeoff.summary_figure(means, noise_means)
    crosses, = [c for c in fig.axes[3].collections  # the one scatter without a label of its own
                if isinstance(c, matplotlib.collections.PathCollection) and c.get_label().startswith("_")]
    assert crosses.get_offsets().tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [5.0, 0.0]]
    plt.close(fig)


def _undefined_and_defined_drops_of_0():
    """Panel (d) of a group whose drops at epochs 0 and 1 are undefined beside one whose drops there are 0 (epoch
    0's at chance, hollow): (the figure, the panel, the crosses, the hollow points)."""
    defined = _means().assign(scale="b", noise_drop=[0.0, 0.0, 0.3, 0.35])  # epoch 0 at chance, its drop defined
    undefined = _means().assign(scale="a", at_chance=[True, True, False, False], noise_drop=[np.nan, np.nan, 0.0, 0.1])
    means = pd.concat([undefined, defined], ignore_index=True)
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
    noise_means = pd.DataFrame({"scale": ["a"] * 4 + ["b"] * 4, "sigma": 0.0, "epoch": means["epoch"],
                                "accuracy": 0.5, "accuracy_lo": 0.4, "accuracy_hi": 0.6})
    fig = tradeoff.summary_figure(means, noise_means)
    drop = fig.axes[3]
    crosses, = [c for c in drop.collections  # the one scatter without a label of its own
                if isinstance(c, matplotlib.collections.PathCollection) and c.get_label().startswith("_")]
    hollow, = [c for c in drop.collections if c.get_label() == "b: at chance (left out)"]
    return fig, drop, crosses, hollow


def test_the_planes_title_says_where_a_drop_rests_on_fewer_seeds_than_it_names():
    """A reader: "mean over 2 seeds" on a plane whose robustness at an epoch was one seed's (the other at chance);
    the note comes only where a drawn point's drop (a finite one) rests on fewer seeds."""
    fewer = "tiny: mean over 3 seeds\n(the drop over fewer where some are at chance)"
    means = _means().assign(n_above_chance=[1, 3, 2, 3])
    fig = tradeoff.alignment_robustness_plane(means, np.array([False, True, True, False]), {})
    assert fig.axes[0].get_title() == fewer
    plt.close(fig)
    means = _means().assign(n_above_chance=[0, 3, 3, 3], noise_drop=[np.nan, 0.2, 0.3, 0.35])  # not drawn
    fig = tradeoff.alignment_robustness_plane(means, np.array([False, True, True, False]), {})
    assert fig.axes[0].get_title() == "tiny: mean over 3 seeds"
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


# ------------------------------------------------------------- what each figure draws is what its table holds
def _bounds(band) -> dict[float, tuple[float, float]]:
    """A fill_between band as {x: (bottom, top)}, read back from its polygon."""
    vertices = np.concatenate([path.vertices for path in band.get_paths()])
    return {float(x): (float(vertices[vertices[:, 0] == x, 1].min()), float(vertices[vertices[:, 0] == x, 1].max()))
            for x in np.unique(vertices[:, 0])}


def _bands(ax) -> list:
    return [c for c in ax.collections if isinstance(c, matplotlib.collections.FillBetweenPolyCollection)]


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def _legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _figure_legend(fig) -> list[str]:
    """The entries of ``fig``'s one legend, which stands for every panel (none has its own)."""
    assert all(ax.get_legend() is None for ax in fig.axes)
    legend, = fig.legends
    return [text.get_text() for text in legend.get_texts()]


def test_a_log_epoch_axis_is_linear_up_to_the_first_positive_epoch():
    """Fractional first-pass epochs keep their own decades: linear only below the smallest positive epoch."""
    fig, ax = plt.subplots()
    common.epoch_axis(ax, EPOCHS, log_x=True)
    assert ax.xaxis.get_transform().linthresh == 0.125
    plt.close(fig)


DEFAULT_RUN_EPOCHS = [0.0, 0.12, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 4.0, 5.0]


def _epoch_ticks(epochs, width: float = 6.8) -> tuple[plt.Figure, list[tuple[float, str]]]:
    """A log epoch axis over ``epochs`` at ``width`` inches, drawn: its figure and its visible labelled ticks,
    (epoch, label text); asserts that no two of those labels overlap."""
    fig, ax = plt.subplots(figsize=(width, 3.8))
    ax.plot(epochs, np.linspace(0, 1, len(epochs)), "o-")
    common.epoch_axis(ax, epochs, log_x=True)
    fig.tight_layout()
    fig.canvas.draw()
    low, high = ax.get_xlim()
    labels = [label for label in ax.get_xticklabels() if label.get_text() and low <= label.get_position()[0] <= high]
    boxes = sorted((label.get_window_extent() for label in labels), key=lambda box: box.x0)
    assert all(left.x1 <= right.x0 for left, right in zip(boxes, boxes[1:])), "tick labels overlap"
    return fig, [(label.get_position()[0], label.get_text()) for label in labels]


@pytest.mark.parametrize("epochs", [[1.0, 2.0, 3.0], [0.0, 1.0], [5.0], [0.0], EPOCHS],
                         ids=["a trajectory", "epochs 0 and 1", "one epoch", "epoch 0 alone", "first pass"])
def test_a_log_epoch_axis_labels_each_of_a_few_epochs_plainly(epochs):
    # A trajectory's 1, 2, 3 read "10⁰" and two unlabelled points; each epoch is its own tick, labelled plainly.
    fig, ticks = _epoch_ticks(epochs)
    assert ticks == [(pytest.approx(epoch), f"{epoch:g}") for epoch in epochs]
    # and the axis still starts a sliver left of the first epoch (epoch 0 alone reached to −0.055)
    assert fig.axes[0].get_xlim()[0] == pytest.approx(epochs[0] - 0.15 * min([e for e in epochs if e > 0] or [1.0]))
    plt.close(fig)


def test_a_log_epoch_axis_leaves_out_the_label_that_would_touch_its_neighbour():
    # A default run's 0.75 sits too close to 1 at a figure's width: its label goes (its tick stays, minor);
    # in a panel half as wide, 0.25 and 3, 4 as well; the first and last epoch and whole epochs go last.
    fig, ticks = _epoch_ticks(DEFAULT_RUN_EPOCHS)
    assert [text for _, text in ticks] == ["0", "0.12", "0.25", "0.5", "1", "2", "3", "4", "5"]
    assert 0.75 in fig.axes[0].xaxis.get_minorticklocs()
    plt.close(fig)
    fig, ticks = _epoch_ticks(DEFAULT_RUN_EPOCHS, width=3.4)
    assert [text for _, text in ticks] == ["0", "0.12", "0.5", "1", "2", "5"]
    plt.close(fig)


def test_a_log_epoch_axis_over_many_epochs_labels_decades_and_its_first_and_last_epoch_plainly():
    # A LAION trajectory's 32 epochs read "10⁰", "10¹" alone; log-style ticks still, but plain and with 32.
    fig, ticks = _epoch_ticks([float(epoch) for epoch in range(1, 33)])
    assert ticks == [(pytest.approx(epoch), f"{epoch:g}") for epoch in (1, 2, 5, 10, 20, 32)]
    plt.close(fig)
    # Sixteen epochs from 0 to 3 in a narrow panel: 0 and 3, the decades 0.1 and 1, then 0.5 (0.05, 2 would touch).
    fig, ticks = _epoch_ticks([0.0, *np.linspace(0.05, 3, 15)], width=3.4)
    assert [text for _, text in ticks] == ["0", "0.1", "0.5", "1", "3"]
    plt.close(fig)


def test_a_streamed_trajectorys_alignment_figure_names_each_of_its_epochs(tmp_path):
    # The reviewer's figure: a trajectory of epochs 1, 2, 3 with samples seen on top.
    import json

    from clipalign_utils.layout import RunDir

    RunDir(tmp_path).source_record.write_text(json.dumps({"samples_per_epoch": 4e8}))
    table = pd.DataFrame({"distortion": "all", "epoch": [1.0, 2.0, 3.0], "srcc": [0.1, 0.2, 0.3],
                          "srcc_lo": [0.0, 0.1, 0.2], "srcc_hi": [0.2, 0.3, 0.4], "krcc": [0.1, 0.2, 0.3],
                          "plcc": [0.1, 0.2, 0.3]})
    fig = iqa.alignment_curve(table)
    common.save_figure(fig, tmp_path, "iqa_alignment_vs_epoch")
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    assert [label.get_text() for label in ax.get_xticklabels()
            if label.get_text() and low <= label.get_position()[0] <= high] == ["1", "2", "3"]
    plt.close(fig)


def test_the_noise_accuracy_figure_draws_each_sigma_with_its_own_interval_in_epoch_order():
    table = _noise_table()
    table = pd.concat([table, table[table["sigma"] == 0.2].assign(sigma=0.1, accuracy=lambda t: t["accuracy"] + 0.02)])
    table = table.sample(frac=1, random_state=0)  # rows in no order
    table.loc[table["sigma"] == 0.2, "hi"] += 0.03  # an interval that is not symmetric about the accuracy
    fig = noise.accuracy_vs_epoch(table, 0.125)
    ax = fig.axes[0]
    assert _legend(ax) == ["clean", "σ = 0.1", "σ = 0.2", "chance (1/8)"]
    assert _line(ax, "chance (1/8)").get_ydata()[0] == 0.125
    for label, sigma in (("clean", 0.0), ("σ = 0.2", 0.2)):
        rows = table[table["sigma"] == sigma].sort_values("epoch")
        line = _line(ax, label)
        assert list(line.get_xdata()) == [0.0, 1.0, 2.0, 5.0]
        assert list(line.get_ydata()) == rows["accuracy"].tolist()
    clean, _, noisy = _bands(ax)
    for band, sigma in ((clean, 0.0), (noisy, 0.2)):
        rows = table[table["sigma"] == sigma]
        assert _bounds(band) == {e: pytest.approx((lo, hi)) for e, lo, hi in zip(rows["epoch"], rows["lo"], rows["hi"])}
    plt.close(fig)


def _iqa_table() -> pd.DataFrame:
    rows = [dict(checkpoint=f"epoch_{e:g}", epoch=e, distortion=d, srcc=s, srcc_lo=s - 0.1, srcc_hi=s + 0.05,
                 krcc=s / 2, plcc=s + 0.02)
            for e, s in [(2.0, 0.55), (0.0, 0.2), (0.125, 0.3), (1.0, 0.6)] for d in ("all", "blur")]
    table = pd.DataFrame(rows)
    table.loc[table["distortion"] == "blur", "srcc"] = 0.9  # a family's row, not the overall one
    return table


def test_the_iqa_alignment_figure_draws_the_overall_srcc_its_band_and_the_other_correlations():
    fig = iqa.alignment_curve(_iqa_table())
    ax = fig.axes[0]
    overall = _iqa_table().query("distortion == 'all'").sort_values("epoch")
    srcc = _line(ax, "SRCC")
    assert list(srcc.get_xdata()) == [0.0, 0.125, 1.0, 2.0] and list(srcc.get_ydata()) == overall["srcc"].tolist()
    assert list(_line(ax, "KRCC").get_ydata()) == overall["krcc"].tolist()
    band, = _bands(ax)
    assert _bounds(band) == {e: pytest.approx((lo, hi))
                             for e, lo, hi in zip(overall["epoch"], overall["srcc_lo"], overall["srcc_hi"])}
    plt.close(fig)


def test_the_shape_bias_figures_draw_the_table_in_epoch_order_with_its_interval():
    table = pd.DataFrame({"epoch": [2.0, 0.0, 1.0], "shape_bias": [0.6, 0.5, 0.3], "lo": [0.5, 0.3, 0.25],
                          "hi": [0.65, 0.7, 0.45], "shape_fraction": [0.3, 0.1, 0.2],
                          "texture_fraction": [0.2, 0.1, 0.4], "neither_fraction": [0.5, 0.8, 0.4]})
    fig = shape_bias.shape_bias_curve(table, human_reference=0.96)
    ax = fig.axes[0]
    model = _line(ax, "model")
    assert list(model.get_xdata()) == [0.0, 1.0, 2.0] and list(model.get_ydata()) == [0.5, 0.3, 0.6]
    band, = _bands(ax)
    assert _bounds(band) == {0.0: pytest.approx((0.3, 0.7)), 1.0: pytest.approx((0.25, 0.45)),
                             2.0: pytest.approx((0.5, 0.65))}
    plt.close(fig)
    fig = shape_bias.decision_fractions(table)
    ax = fig.axes[0]
    layers = {c.get_label(): _bounds(c) for c in ax.collections}
    assert layers["shape"] == {0.0: pytest.approx((0, 0.1)), 1.0: pytest.approx((0, 0.2)), 2.0: pytest.approx((0, 0.3))}
    assert layers["texture"] == {0.0: pytest.approx((0.1, 0.2)), 1.0: pytest.approx((0.2, 0.6)),
                                 2.0: pytest.approx((0.3, 0.5))}
    plt.close(fig)


def _saliency_rows() -> pd.DataFrame:
    rows = [dict(checkpoint="centre_bias", epoch=np.nan, metric="sauc", value=0.6, value_lo=0.55, value_hi=0.62)]
    rows += [dict(checkpoint=f"epoch_{e:g}", epoch=e, metric="sauc", value=v, value_lo=v - 0.05, value_hi=v + 0.01)
             for e, v in [(1.0, 0.7), (0.0, 0.5), (0.5, 0.65)]]
    return pd.DataFrame(rows)


def test_the_saliency_figure_draws_the_model_with_its_band_and_the_centre_bias_apart():
    fig = saliency.metrics_vs_epoch(_saliency_rows())
    ax = fig.axes[0]
    model, centre = _line(ax, "model"), _line(ax, "centre bias")
    assert list(model.get_xdata()) == [0.0, 0.5, 1.0] and list(model.get_ydata()) == [0.5, 0.65, 0.7]
    band, = _bands(ax)
    assert _bounds(band) == {0.0: pytest.approx((0.45, 0.51)), 0.5: pytest.approx((0.6, 0.66)),
                             1.0: pytest.approx((0.65, 0.71))}
    assert list(centre.get_ydata()) == [0.6, 0.6]
    assert (centre.get_color(), centre.get_linestyle()) != (model.get_color(), model.get_linestyle())
    span, = [p for p in ax.patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb(centre.get_color())]
    heights = span.get_path().transformed(span.get_patch_transform()).vertices[:, 1]  # x in axes, y in data
    assert (heights.min(), heights.max()) == pytest.approx((0.55, 0.62))
    assert _figure_legend(fig) == ["model", "centre bias"]
    plt.close(fig)


def test_the_two_afc_figure_bands_all_with_its_interval_and_labels_each_subset_with_its_count():
    table = pd.DataFrame({"checkpoint": ["e1", "e1", "e0", "e0"], "epoch": [1.0, 1.0, 0.0, 0.0],
                          "subset": ["all", "photo", "all", "photo"], "score": [0.6, 0.62, 0.55, 0.6],
                          "score_lo": [0.5, 0.57, 0.45, 0.52], "score_hi": [0.62, 0.68, 0.6, 0.66],
                          "n_triplets": [10, 5, 10, 5]})
    fig = two_afc.score_curve(table, ceiling=0.9)
    ax = fig.axes[0]
    assert _legend(ax) == ["photo (n = 5)", "all: 95 % bootstrap CI (triplets resampled)", "all (n = 10)", "chance",
                           "ceiling (judges' majority): 0.900"]
    assert list(_line(ax, "all (n = 10)").get_ydata()) == [0.55, 0.6]
    assert list(_line(ax, "ceiling (judges' majority): 0.900").get_ydata()) == [0.9, 0.9]
    band, = _bands(ax)
    assert _bounds(band) == {0.0: pytest.approx((0.45, 0.6)), 1.0: pytest.approx((0.5, 0.62))}
    plt.close(fig)


def test_the_summary_figure_draws_texture_bias_and_accuracy_with_their_own_intervals():
    means = _means().assign(shape_bias=[0.5, 0.2, 0.3, 0.4])
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.05, means[column] + 0.01
    noise_means = pd.DataFrame({"scale": "tiny", "sigma": 0.0, "epoch": means["epoch"], "accuracy": 0.5,
                                "accuracy_lo": 0.4, "accuracy_hi": 0.6})
    fig = tradeoff.summary_figure(means, noise_means)
    accuracy, _, texture = fig.axes[:3]
    assert list(texture.get_lines()[0].get_ydata()) == pytest.approx([0.8, 0.7, 0.6])  # 1 − shape bias
    band, = _bands(texture)
    assert _bounds(band) == {1.0: pytest.approx((0.79, 0.85)), 2.0: pytest.approx((0.69, 0.75)),
                             5.0: pytest.approx((0.59, 0.65))}
    band, = _bands(accuracy)
    assert list(_bounds(band).values()) == [pytest.approx((0.4, 0.6))] * 4
    plt.close(fig)


def test_the_relations_say_how_many_checkpoints_an_undefined_rho_had_and_the_accuracy_band_stays_in_0_1():
    means = _means().assign(at_chance=False)
    relations = pd.DataFrame({"scale": "tiny", "x": ["iqa_srcc", "iqa_srcc"], "y": ["noise_drop", "texture_bias"],
                              "spearman": [np.nan, np.nan], "p_value": np.nan, "n": [1, 2]})
    fig = tradeoff.relation_panels(means, relations)
    assert [ax.get_title() for ax in fig.axes] == ["tiny: ρ undefined (1 checkpoint)",
                                                   "tiny: ρ undefined (2 checkpoints)"]
    plt.close(fig)
    # two seeds' t-interval of an accuracy reached -0.29 (the panel's axis went below 0)
    noise_means = pd.DataFrame({"scale": "tiny", "epoch": [0.0, 1.0, 2.0, 5.0], "sigma": 0.0, "accuracy": 0.2,
                                "accuracy_lo": -0.3, "accuracy_hi": 1.4})
    means = _means()
    for column in ("iqa_srcc", "shape_bias", "noise_drop"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
    fig = tradeoff.summary_figure(means, noise_means)
    band, = _bands(fig.axes[0])
    assert list(_bounds(band).values()) == [pytest.approx((0.0, 1.0))] * 4
    plt.close(fig)


def test_the_plane_draws_robustness_as_one_minus_the_drop():
    fig = tradeoff.alignment_robustness_plane(_means(), np.array([False, True, True, False]), {})
    assert fig.axes[0].collections[0].get_offsets()[:, 1].tolist() == pytest.approx([0.8, 0.7, 0.65])
    plt.close(fig)


def test_the_quality_figure_keeps_a_checkpoint_without_an_interval_and_bands_the_rest():
    means = pd.DataFrame({"setting": "a", "epoch": [0.0, 1.0, 2.0], "iqa_srcc": [0.2, 0.5, 0.4],
                          "iqa_srcc_lo": [np.nan, 0.4, 0.3], "iqa_srcc_hi": [np.nan, 0.55, 0.45]})
    fig = mechanism.setting_curves(means)
    ax = fig.axes[0]
    assert list(_line(ax, "a").get_xdata()) == [0.0, 1.0, 2.0]
    band, = _bands(ax)
    bounds = _bounds(band)
    assert (bounds[1.0], bounds[2.0]) == (pytest.approx((0.4, 0.55)), pytest.approx((0.3, 0.45)))
    plt.close(fig)


def test_the_interpolation_plane_draws_robustness_and_its_asymmetric_interval():
    path = pd.DataFrame({"epoch": [0.0, 1.0], "iqa_srcc": [0.3, 0.5], "noise_drop": [0.1, 0.4]})
    rows = pd.DataFrame({"alpha": [0.0, 1.0], "iqa_srcc": [0.3, 0.5], "iqa_srcc_lo": [0.25, 0.45],
                         "iqa_srcc_hi": [0.32, 0.52], "noise_drop": [0.1, 0.4], "noise_drop_lo": [0.05, 0.3],
                         "noise_drop_hi": [0.12, 0.42]})
    fig = interpolation.interpolation_plane(path, rows, "t", with_intervals=True)
    ax = fig.axes[0]
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([0.9, 0.6])  # the checkpoints' path
    container, = ax.containers
    _, _, (xbars, ybars) = container.lines
    # robustness 1 − drop runs from 1 − drop_hi to 1 − drop_lo
    assert [sorted(segment[:, 1]) for segment in ybars.get_segments()] == [pytest.approx([0.88, 0.95]),
                                                                           pytest.approx([0.58, 0.7])]
    assert [sorted(segment[:, 0]) for segment in xbars.get_segments()] == [pytest.approx([0.25, 0.32]),
                                                                           pytest.approx([0.45, 0.52])]
    plt.close(fig)


def test_the_loss_figure_draws_loss_and_learning_rate_against_epoch_and_marks_every_checkpoint():
    # The training page's figure: loss left, schedule right, one grey line per saved checkpoint.
    from clipalign_utils.plots import training

    log = pd.DataFrame({"epoch": [0.0, 0.5, 1.0, 1.5, 2.0], "loss": [4.0, 3.0, 2.5, 2.0, 1.8],
                        "lr": [0.0, 1e-3, 8e-4, 4e-4, 0.0]})
    fig = training.loss_curve(log, [1.0, 2.0])
    ax, ax_lr = fig.axes
    loss, *marks = ax.get_lines()
    assert list(loss.get_xdata()) == log["epoch"].tolist() and list(loss.get_ydata()) == log["loss"].tolist()
    assert [list(m.get_xdata()) for m in marks] == [[1.0, 1.0], [2.0, 2.0]]
    lr, = ax_lr.get_lines()
    assert list(lr.get_xdata()) == log["epoch"].tolist() and list(lr.get_ydata()) == log["lr"].tolist()
    assert (ax.get_xlabel(), ax.get_ylabel(), ax_lr.get_ylabel()) == ("epoch", "contrastive loss", "learning rate")
    plt.close(fig)


def test_the_factor_panels_draw_each_measure_in_the_factors_value_order_with_a_minimum_span():
    # Page 6: settings given in any order are drawn left to right by the factor's value, each tick named by
    # its value, each panel titled with its measure; a panel whose values barely differ shows min_span around them.
    from clipalign_utils.plots import sweep

    summary = pd.DataFrame({"texture_correlation": [0.95, 0.5, 0.8], "m1": [0.3, 0.1, 0.2],
                            "m2": [0.5, 0.5, 0.52]})
    fig = sweep.factor_panels({"texture_correlation": summary},
                              {"m1": ("measure one", 0.1), "m2": ("measure two", 0.2)})
    first, second = fig.axes
    assert list(first.get_lines()[0].get_ydata()) == [0.1, 0.2, 0.3]
    assert list(second.get_lines()[0].get_ydata()) == [0.5, 0.52, 0.5]
    assert [t.get_text() for t in first.get_xticklabels()] == ["0.5", "0.8", "0.95"]
    assert (first.get_title(), second.get_title()) == ("measure one", "measure two")
    assert first.get_xlabel() == "texture_correlation"
    low, high = first.get_ylim()
    assert low <= 0.1 and high >= 0.3  # a span above min_span: the values' own range
    assert second.get_ylim() == pytest.approx((0.51 - 0.12, 0.51 + 0.12))
    plt.close(fig)


def test_the_shape_noise_scatter_joins_each_setting_in_epoch_order_and_rings_its_last_checkpoint():
    # Page 6's scatter: rows in any order are joined by epoch, one labelled line per setting, the ring on the
    # setting's last checkpoint; with nothing left out the title speaks of no hollow points.
    from clipalign_utils.plots import sweep

    table = pd.DataFrame({"setting": ["a", "a", "a", "b", "b"], "epoch": [2.0, 0.0, 1.0, 1.0, 0.0],
                          "shape_bias": [0.4, 0.2, 0.3, 0.6, 0.5], "noise_drop": [0.3, 0.1, 0.2, 0.25, 0.15]})
    fig = sweep.shape_vs_noise(table)
    ax = fig.axes[0]
    a, b = ax.get_lines()
    assert (a.get_label(), b.get_label()) == ("a", "b")
    assert list(a.get_xdata()) == [0.2, 0.3, 0.4] and list(a.get_ydata()) == [0.1, 0.2, 0.3]
    assert list(b.get_xdata()) == [0.5, 0.6]
    rings = [c.get_offsets().tolist() for c in ax.collections if list(c.get_sizes()) == [120]]
    assert rings == [[[0.4, 0.3]], [[0.6, 0.25]]]
    assert "hollow" not in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    plt.close(fig)


def test_the_factor_panels_say_a_measure_no_setting_has_and_keep_an_epoch_axis_at_or_above_0():
    """A reader: a panel with nothing to draw was left blank, and min_span around early IQA peaks ran the epoch
    axis to −1."""
    from clipalign_utils.plots import sweep

    summary = pd.DataFrame({"texture_correlation": [0.5, 0.8], "m1": [np.nan, np.nan], "iqa_peak_epoch": [1.0, 0.75]})
    fig = sweep.factor_panels({"texture_correlation": summary},
                              {"m1": ("measure one", 0.1), "iqa_peak_epoch": ("epoch of the IQA peak", 4.0)})
    empty, epochs = fig.axes
    assert [text.get_text() for text in empty.texts] == ["no setting has this measure defined"]
    assert len(epochs.texts) == 0 and epochs.get_ylim() == pytest.approx((0.0, 4.8))
    plt.close(fig)


def test_the_shape_noise_scatter_lists_a_setting_without_a_point_as_such():
    """A reader: the legend listed texture_correlation=0.5, which had no point (a drop at chance throughout)."""
    from clipalign_utils.plots import sweep

    table = pd.DataFrame({"setting": ["a", "a", "b", "b"], "epoch": [0.0, 1.0, 0.0, 1.0],
                          "shape_bias": [0.2, 0.3, 0.5, 0.5], "noise_drop": [0.1, 0.2, np.nan, np.nan]})
    fig = sweep.shape_vs_noise(table, left_out=pd.Series([False, False, True, True]))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b: no point (at chance at every checkpoint)"]
    plt.close(fig)


def test_the_shape_noise_scatters_legend_names_a_setting_drawn_only_hollow_with_a_hollow_marker():
    """An audit: a setting whose every point is at chance is drawn as hollow points alone, yet its legend entry was
    its (empty) line's filled marker."""
    from clipalign_utils.plots import sweep

    table = pd.DataFrame({"setting": ["a", "a", "b", "b"], "epoch": [0.0, 1.0, 0.0, 1.0],
                          "shape_bias": [0.2, 0.3, 0.5, 0.6], "noise_drop": [0.1, 0.2, 0.05, 0.04]})
    fig = sweep.shape_vs_noise(table, left_out=pd.Series([False, False, True, True]))
    legend = fig.axes[0].get_legend()
    entries = dict(zip([t.get_text() for t in legend.get_texts()], legend.legend_handles))
    assert list(entries) == ["a", "b: every point at chance (hollow)"]
    assert entries["a"].get_markerfacecolor() != "none"
    hollow = entries["b: every point at chance (hollow)"]
    assert hollow.get_markerfacecolor() == "none" and hollow.get_marker() == "o"
    plt.close(fig)


def test_an_image_grid_shows_every_image_with_its_own_title_in_order():
    # The world's and the noise page's grids: image k in panel k titled titles[k], no panel past the last.
    from clipalign_utils.plots import world

    images = np.stack([np.full((4, 4, 3), 40 * k, dtype=np.uint8) for k in range(5)])
    titles = [f"image {k}" for k in range(5)]
    fig = world.image_grid(images, titles, columns=2, suptitle="five")
    assert len(fig.axes) == 5
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5
    for k, ax in enumerate(shown):
        assert np.array_equal(ax.images[0].get_array(), images[k]) and ax.get_title() == titles[k]
    assert fig._suptitle.get_text() == "five"
    plt.close(fig)


def test_a_streamed_runs_saved_figure_reads_samples_seen_in_billions_above_its_epoch_axis(tmp_path):
    # A public trajectory's epoch is a fixed number of samples: the top axis converts epochs to billions seen.
    import json

    from clipalign_utils.layout import RunDir

    RunDir(tmp_path).source_record.write_text(json.dumps({"samples_per_epoch": 4e8}))
    fig, (plain, epochs) = plt.subplots(1, 2)
    epochs.set(xlabel="epoch", xlim=(0, 10))
    common.save_figure(fig, tmp_path, "f")
    assert not plain.child_axes and RunDir(tmp_path).figure("f").exists()
    top, = epochs.child_axes
    assert top.get_xlabel() == "samples seen (billions)"
    assert top.get_xlim() == pytest.approx((0.0, 4.0))  # 10 epochs of 0.4 billion
    plt.close(fig)


@pytest.mark.parametrize("epochs, labelled", [
    ([0.0, 0.25, 0.5, 0.75, 1.0, 2.0], ["0", "0.25", "0.5", "0.75", "1", "2"]),
    (DEFAULT_RUN_EPOCHS, ["0", "0.12", "0.25", "0.5", "\n0.75", "1", "2", "3", "4", "5"])],
    ids=["six epochs", "default run"])
def test_the_family_figure_labels_each_epoch_of_six_and_of_a_default_runs_ten(epochs, labelled):
    """Six epochs up to 2 each get a label on one line; an audit: a default run's ten lost 0.75's, which would touch
    1's at the figure's 13.5 in; it now goes a line lower (on one line all ten needed a 17 in figure)."""
    from clipalign_utils.plots.families import family_curves

    marked = pd.DataFrame({"distortion": np.repeat(["contrast_change", "gaussian_blur"], len(epochs)),
                           "epoch": epochs * 2, "srcc": np.linspace(-0.5, 0.5, 2 * len(epochs)),
                           "seen_in_training": False})
    within = pd.DataFrame({"epoch": epochs, "within_seen_srcc": np.nan, "within_unseen_srcc": np.nan,
                           "within_family_srcc": 0.1, "overall_srcc": 0.2})
    fig = family_curves(marked, within)
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == labelled
        assert set(epochs) <= {*ax.get_xticks(), *ax.xaxis.get_minorticklocs()}  # every epoch keeps a tick
    plt.close(fig)


def test_the_saliency_metrics_grid_labels_a_default_runs_early_epochs_on_two_lines():
    """A review: page 8's seven 3.4-in panels labelled 6 of a default run's ten epochs (0.25, 0.75, 3 and 4 left
    out); a label that would touch goes a line lower, as on the family figure."""
    from clipalign_utils.plots.saliency import metrics_vs_epoch

    rows = [{"checkpoint": f"epoch_{e:g}", "epoch": e, "metric": metric, "value": 0.6, "value_lo": 0.5, "value_hi": 0.7}
            for metric in ("cc", "nss", "sim", "kld", "auc_judd", "sauc", "auc_borji") for e in DEFAULT_RUN_EPOCHS]
    fig = metrics_vs_epoch(pd.DataFrame(rows))
    fig.canvas.draw()
    for ax in fig.axes[:7]:  # (4 touches 3 and 5 on either line: its minor tick alone)
        assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == [
            "0", "0.12", "\n0.25", "0.5", "\n0.75", "1", "2", "\n3", "5"]
        assert set(DEFAULT_RUN_EPOCHS) <= {*ax.get_xticks(), *ax.xaxis.get_minorticklocs()}
    plt.close(fig)


def test_the_family_figure_draws_each_family_in_its_seen_colour_and_each_mean_by_its_own_column():
    from clipalign_utils.plots.families import family_curves

    epochs = [0.0, 1.0, 2.0]
    marked = pd.DataFrame({"distortion": ["blur"] * 3 + ["noise"] * 3 + ["all"] * 3, "epoch": epochs * 3,
                           "srcc": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9, 0.9, 0.9],
                           "seen_in_training": ["True"] * 3 + [False] * 3 + [np.nan] * 3})
    within = pd.DataFrame({"epoch": epochs, "within_seen_srcc": [0.1, 0.2, 0.3], "within_unseen_srcc": [0.4, 0.5, 0.6],
                           "within_family_srcc": [0.25, 0.35, 0.45], "overall_srcc": [np.nan] * 3})
    fig = family_curves(marked, within, log_x=False)
    left, right = fig.axes[:2]
    # one line per family, not the "all" rows; red for a family seen in training ("True" as read from a CSV)
    assert [(list(line.get_ydata()), line.get_color()) for line in left.get_lines()] == [
        ([0.1, 0.2, 0.3], "tab:red"), ([0.4, 0.5, 0.6], "tab:blue")]
    # each mean is drawn from its own column; a column with no value (overall here) is left out
    drawn = {line.get_label(): list(line.get_ydata()) for line in right.get_lines()}
    assert drawn == {"mean over seen families": [0.1, 0.2, 0.3], "mean over unseen families": [0.4, 0.5, 0.6],
                     "mean over all families": [0.25, 0.35, 0.45]}
    plt.close(fig)


# ------------------------------------------- an audit: what the remaining step figures draw, read back from them
def _hline(ax, y) -> bool:
    """Whether ``ax`` has a horizontal line (axhline) at ``y``."""
    return any(list(line.get_ydata()) == [y, y] and list(line.get_xdata()) == [0, 1] for line in ax.get_lines())


def _vline(ax, x) -> bool:
    return any(list(line.get_xdata()) == [x, x] and list(line.get_ydata()) == [0, 1] for line in ax.get_lines())


def test_the_iqa_heatmaps_draw_each_row_in_its_order_on_its_own_scale():
    # the cells are the table's values, rows named, "all" left out of the per-distortion map
    fig = iqa.distortion_heatmap(_iqa_table().assign(srcc=lambda t: t["srcc"] + t["epoch"] / 100))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["blur"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.125", "1", "2"]
    assert ax.collections[0].get_array().ravel().tolist() == pytest.approx([0.9, 0.90125, 0.91, 0.92])
    plt.close(fig)
    # the layers in the table's order (input to output), not sorted; the colour scale the caller gives
    layers = pd.DataFrame({"layer": ["block_9", "block_10", "block_9", "block_10"], "epoch": [0.0, 0.0, 1.0, 1.0],
                           "score": [0.6, 0.7, 0.8, 0.9]})
    fig = iqa.layer_heatmap(layers, "score", scale=(0, 1, 0.5), label="2AFC score")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["block 9", "block 10"]
    assert ax.collections[0].get_array().ravel().tolist() == pytest.approx([0.6, 0.8, 0.7, 0.9])
    norm = ax.collections[0].norm
    assert (norm.vmin, norm.vmax) == (0, 1) and norm(0.5) == pytest.approx(0.5)
    plt.close(fig)


def test_the_iqa_alignment_figure_marks_no_relation_at_zero():
    fig = iqa.alignment_curve(_iqa_table())
    assert _hline(fig.axes[0], 0)
    plt.close(fig)


def test_the_distance_scatter_draws_each_checkpoints_pairs_in_its_own_panel_titled_with_its_score():
    pairs = pd.DataFrame({"checkpoint": ["a", "a", "b", "b"], "distortion": ["blur", "noise", "blur", "noise"],
                          "quality": [0.1, 0.9, 0.2, 0.8], "model_distance": [3.0, 1.0, 5.0, 4.0]})
    fig = iqa.distance_quality_scatter(pairs, ["a", "b"], ["early", "late"], scores=[0.25, 0.75], log_y=False)
    for ax, checkpoint, title in zip(fig.axes, ["a", "b"], ["early: SRCC 0.250", "late: SRCC 0.750"]):
        rows = pairs[pairs["checkpoint"] == checkpoint]
        points = np.concatenate([c.get_offsets() for c in ax.collections])
        assert sorted(map(tuple, points.tolist())) == sorted(zip(rows["quality"], rows["model_distance"]))  # x: quality
        assert ax.get_title() == title
    plt.close(fig)


def test_the_iqa_examples_grid_has_no_axes_without_an_image():
    # a reference and 3 distorted images in a 6-column grid had two empty cells beside them
    reference, distorted = np.zeros((4, 4, 3), np.uint8), np.zeros((3, 4, 4, 3), np.uint8)
    fig = iqa.iqa_examples(reference, distorted, ["a", "b", "c"], "reference")
    assert len(fig.axes) == 4 and all(ax.images for ax in fig.axes)
    plt.close(fig)
    fig = iqa.iqa_examples(reference, np.zeros((7, 4, 4, 3), np.uint8), list("abcdefg"), "reference")
    assert len(fig.axes) == 8 and all(ax.images for ax in fig.axes)  # two rows of six, the second's last four gone
    plt.close(fig)


def test_the_log_distance_axis_spans_the_points_not_zero():
    # distances far above 0: a symlog axis from 0 drew every point in its top corner
    pairs = pd.DataFrame({"checkpoint": "a", "distortion": ["blur", "noise"] * 10,
                          "quality": np.linspace(0, 1, 20), "model_distance": np.linspace(5.0, 6.0, 20)})
    fig = iqa.distance_quality_scatter(pairs, ["a"], ["last"])
    low, high = fig.axes[0].get_ylim()
    assert 4.5 < low < 5.0 and 6.0 < high < 6.5
    plt.close(fig)


def test_the_distance_axis_says_its_scale_and_is_plainly_log_where_every_distance_is_positive():
    """An audit: the axis was symlog, linear below the 10th percentile of the distances, with decade ticks alone
    and nothing saying so (a "10⁻²" label sat in its linear part)."""
    distances = np.geomspace(0.005, 5.0, 20)
    pairs = pd.DataFrame({"checkpoint": np.repeat(["a", "b"], 20), "distortion": "blur",
                          "quality": np.tile(np.linspace(0, 1, 20), 2), "model_distance": np.tile(distances, 2)})
    fig = iqa.distance_quality_scatter(pairs, ["a", "b"], ["peak", "last"], distance_label="euclidean distance")
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    assert fig.axes[0].get_ylabel() == "euclidean distance (log scale)"
    plt.close(fig)
    # a distance of 0 has no place on a log axis: symlog, its linear stretch the same on both panels and named
    pairs.loc[0, "model_distance"] = 0.0
    fig = iqa.distance_quality_scatter(pairs, ["a", "b"], ["peak", "last"], distance_label="euclidean distance")
    linthresh = float(np.quantile(pairs["model_distance"][pairs["model_distance"] > 0], 0.1))
    assert [ax.yaxis.get_transform().linthresh for ax in fig.axes[:2]] == pytest.approx([linthresh] * 2)
    assert fig.axes[0].get_ylabel() == f"euclidean distance\n(log scale; linear below {linthresh:.2g})"
    assert len(fig.axes[0].yaxis.get_minorticklocs()) > 0  # lines between the decades, as on a log axis
    plt.close(fig)
    # within a decade (a streamed trajectory's 0.7–1.6 read "10⁰, 9×10⁻¹, 8×10⁻¹", none above 1): linear
    pairs["model_distance"] = np.tile(np.linspace(0.7, 1.6, 20), 2)
    fig = iqa.distance_quality_scatter(pairs, ["a", "b"], ["peak", "last"], distance_label="euclidean distance")
    assert [ax.get_yscale() for ax in fig.axes[:2]] == ["linear", "linear"]
    assert fig.axes[0].get_ylabel() == "euclidean distance"
    plt.close(fig)


def test_the_saliency_maps_grid_draws_each_row_at_its_densitys_aspect_ratio():
    # a 16:9 CAT2000 stimulus is squashed square for the model; its row is drawn 16:9, as its density is
    images, densities = np.zeros((1, 8, 8, 3), np.uint8), [np.ones((9, 16))]
    fig = saliency.saliency_maps_grid(images, densities, {"e0": [np.ones((8, 8))]})
    for ax in fig.axes:
        rows, columns = ax.get_images()[0].get_array().shape[:2]
        assert ax.get_aspect() * rows / columns == pytest.approx(9 / 16)
    plt.close(fig)


def test_the_noise_figures_draw_each_drop_in_epoch_order_and_darken_with_sigma():
    table = _noise_table()
    summary = checkpoint_summary(table, chance=0.125)
    fig = noise.drop_vs_epoch(table, summary.sample(frac=1, random_state=1))  # the summary in no order
    ax = fig.axes[0]
    rows = table[table["sigma"] == 0.2]
    assert list(_line(ax, "σ = 0.2").get_ydata()) == pytest.approx(rows["normalized_drop"].tolist())
    assert list(_line(ax, "mean over σ").get_xdata()) == [0.0, 1.0, 2.0, 5.0]
    plt.close(fig)
    table = pd.concat([table, table[table["sigma"] == 0.2].assign(sigma=0.4)])
    fig = noise.accuracy_vs_epoch(table, 0.125)
    luminance = [np.dot(matplotlib.colors.to_rgb(_line(fig.axes[0], label).get_color()), [0.299, 0.587, 0.114])
                 for label in ("σ = 0.2", "σ = 0.4")]
    assert luminance[0] > luminance[1]  # "light to dark as sigma grows"
    plt.close(fig)


def test_the_noise_examples_put_each_image_in_its_row_and_each_sigma_in_its_column():
    images = {sigma: np.stack([np.full((2, 2, 3), 10 * k + int(10 * sigma), np.uint8) for k in range(2)])
              for sigma in (0.5, 0.0, 0.25)}
    fig = noise.noise_examples(images, ["cat", "dog"])
    assert [ax.get_title() for ax in fig.axes] == ["cat (clean)", "σ = 0.25", "σ = 0.5", "dog (clean)", "σ = 0.25",
                                                   "σ = 0.5"]
    assert [round(float(ax.get_images()[0].get_array()[0, 0, 0]) * 255) for ax in fig.axes] == [0, 2, 5, 10, 12, 15]
    plt.close(fig)


def _per_class():
    per_class = pd.DataFrame({"class": ["star", "star", "moon", "moon", "sun", "sun"], "checkpoint": ["e0", "e5"] * 3,
                              "shape_bias": [0.1, 0.9, 0.8, 0.2, 0.5, 0.6]})
    overall = pd.DataFrame({"checkpoint": ["e0", "e5"], "shape_bias": [0.3, 0.7]})
    return per_class, overall


def test_the_per_class_panel_sorts_classes_by_the_last_checkpoint_and_marks_each_overall_bias():
    per_class, overall = _per_class()
    fig = shape_bias.per_class_panel(per_class, overall, ["e0", "e5"], ["early", "late"], human_reference=0.96)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["moon", "sun", "star"]  # last checkpoint: 0.2, 0.6, 0.9
    early, late = (next(c for c in ax.collections if c.get_label() == label) for label in ("early", "late"))
    assert early.get_offsets().tolist() == [[0.8, 0.0], [0.5, 1.0], [0.1, 2.0]]
    assert late.get_offsets().tolist() == [[0.2, 0.0], [0.6, 1.0], [0.9, 2.0]]
    assert _vline(ax, 0.3) and _vline(ax, 0.7) and _vline(ax, 0.96)  # each checkpoint's overall, the humans
    top, = ax.child_axes
    assert top._functions[0](0.2) == pytest.approx(0.8)  # the top axis reads the texture fraction, 1 − x
    plt.close(fig)


def test_the_per_class_panel_names_each_overall_line_marks_checkpoints_at_chance_and_clears_the_edges():
    per_class, overall = _per_class()
    overall = overall.assign(shape_at_chance=[True, False])
    fig = shape_bias.per_class_panel(per_class, overall, ["e0", "e5"], ["early", "late"], human_reference=0.96)
    ax = fig.axes[0]
    assert _legend(ax)[:4] == ["early (at chance on the cue-conflict images)", "early: overall 0.300", "late",
                               "late: overall 0.700"]
    early, late = (next(c for c in ax.collections if c.get_label().startswith(label)) for label in ("early", "late"))
    assert early.get_facecolor().size == 0 and late.get_facecolor()[0][3] == 1  # at chance hollow, as the curve
    overall_lines = [line for line in ax.get_lines() if "overall" in line.get_label()]
    assert overall_lines[0].get_linestyle() != overall_lines[1].get_linestyle()  # both show where they coincide
    low, high = ax.get_xlim()
    assert low < 0 and high > 1  # a marker at 0 or 1 whole, not half on the axes' edge
    plt.close(fig)


def test_the_shape_bias_figures_mark_no_preference_and_colour_shape_and_texture_as_the_panels_do():
    table = pd.DataFrame({"epoch": [0.0, 1.0], "shape_bias": [0.5, 0.6], "lo": [0.4, 0.5], "hi": [0.6, 0.7],
                          "shape_fraction": [0.3, 0.4], "texture_fraction": [0.3, 0.2], "neither_fraction": [0.4, 0.4]})
    fig = shape_bias.shape_bias_curve(table, human_reference=0.96)
    ax = fig.axes[0]
    assert list(_line(ax, "no preference").get_ydata()) == [0.5, 0.5]
    assert list(_line(ax, "humans (literature)").get_ydata()) == [0.96, 0.96]
    plt.close(fig)
    fig = shape_bias.decision_fractions(table)
    colours = {c.get_label(): matplotlib.colors.to_hex(c.get_facecolor()[0], keep_alpha=False)
               for c in fig.axes[0].collections}
    assert colours["shape"] == matplotlib.colors.to_hex(shape_bias.LAST_COLOUR)  # the model's colour, as the curve
    assert colours["texture"] == matplotlib.colors.to_hex(shape_bias.EARLY_COLOUR)
    plt.close(fig)


def test_the_saliency_figures_mark_auc_chance_and_draw_each_sets_region_shares_against_their_area():
    fig = saliency.metrics_vs_epoch(_saliency_rows())
    assert _hline(fig.axes[0], 0.5)  # shuffled AUC's chance
    plt.close(fig)
    summary = pd.DataFrame([{"set": s, "epoch": e, "region": r, "share": share, "share_lo": share - 0.1,
                             "share_hi": share + 0.05, "area": area}
                            for s, offset in (("saliency_embedded", 0.0), ("saliency_real_photos", 0.2))
                            for e in (1.0, 0.0) for r, area in (("contour", 0.1), ("interior", 0.3))
                            for share in [offset + e / 10 + (0.3 if r == "interior" else 0.0)]])
    fig = saliency.region_share_vs_epoch(summary)
    assert [ax.get_title() for ax in fig.axes] == ["embedded", "real photos"]
    for ax, offset in zip(fig.axes, (0.0, 0.2)):
        contour = _line(ax, "contour")
        assert list(contour.get_xdata()) == [0.0, 1.0] and list(contour.get_ydata()) == pytest.approx(
            [offset, offset + 0.1])
        band = _bands(ax)[0]
        assert _bounds(band) == {0.0: pytest.approx((offset - 0.1, offset + 0.05)),
                                 1.0: pytest.approx((offset, offset + 0.15))}
        assert _hline(ax, 0.1) and _hline(ax, 0.3)  # the regions' shares of the area
    plt.close(fig)


def test_the_saliency_maps_grid_puts_each_images_density_and_maps_in_its_row():
    images = np.stack([np.full((2, 2, 3), k, np.uint8) for k in range(2)])
    densities = [np.full((2, 2), 10.0 + k) for k in range(2)]
    maps = {"e0": [np.full((2, 2), 20.0 + k) for k in range(2)], "e5": [np.full((2, 2), 30.0 + k) for k in range(2)]}
    fig = saliency.saliency_maps_grid(images, densities, maps)
    drawn = [float(ax.get_images()[0].get_array()[0, 0, ...].ravel()[0]) for ax in fig.axes]
    assert drawn == [0, 10, 20, 30, 1, 11, 21, 31]
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "ground truth (density)", "e0", "e5"]
    plt.close(fig)


def test_the_plane_joins_the_front_by_alignment_and_stars_the_selected_checkpoint_at_its_robustness():
    means = _means().assign(at_chance=False)
    fig = tradeoff.alignment_robustness_plane(means, np.array([False, True, True, True]), {"tiny": 3})
    ax = fig.axes[0]
    front = _line(ax, "Pareto front")
    assert list(front.get_xdata()) == [0.5, 0.5, 0.55] and list(front.get_ydata()) == pytest.approx([0.8, 0.65, 0.7])
    star = next(c for c in ax.collections if c.get_label() == "selected: epoch_5")
    assert star.get_offsets().tolist() == [[0.5, pytest.approx(0.65)]]
    assert ax.get_title() == "tiny: mean over 3 seeds"
    plt.close(fig)


def test_the_summary_figure_bands_each_measure_with_its_own_interval_and_draws_clean_only_when_asked():
    means = _means().assign(at_chance=False, two_afc_score=[0.6, 0.7, 0.75, 0.8])
    for k, column in enumerate(("iqa_srcc", "shape_bias", "noise_drop", "two_afc_score")):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01 * (k + 1), means[column] + 0.02 * (k + 1)
    noise_means = pd.DataFrame({"scale": "tiny", "sigma": [0.0, 0.0, 0.2, 0.2], "epoch": [0.0, 1.0] * 2,
                                "accuracy": [0.5, 0.6, 0.3, 0.4], "accuracy_lo": 0.2, "accuracy_hi": 0.7})
    fig = tradeoff.summary_figure(means, noise_means, clean_only=True)
    accuracy, srcc, _, drop, similarity = fig.axes
    assert [line.get_label() for line in accuracy.get_lines()] == ["tiny, clean"]
    for ax, column, k in ((srcc, "iqa_srcc", 0), (drop, "noise_drop", 2), (similarity, "two_afc_score", 3)):
        band, = _bands(ax)
        assert _bounds(band) == {e: pytest.approx((v - 0.01 * (k + 1), v + 0.02 * (k + 1)))
                                 for e, v in zip(means["epoch"], means[column])}
    plt.close(fig)


def test_the_relations_title_each_pair_with_its_own_rho_and_p():
    means = _means().assign(at_chance=False)
    relations = pd.DataFrame({"scale": "tiny", "x": ["iqa_srcc", "iqa_srcc"], "y": ["noise_drop", "texture_bias"],
                              "spearman": [0.5, -0.25], "p_value": [0.4, 0.03], "n": 4})
    fig = tradeoff.relation_panels(means, relations)
    assert [ax.get_title() for ax in fig.axes] == ["tiny: ρ=0.50, p=0.400", "tiny: ρ=-0.25, p=0.030"]
    plt.close(fig)


def test_the_quality_figure_draws_a_line_per_setting_in_panels_titled_by_measure():
    means = pd.DataFrame({"setting": ["a", "a", "b", "b"], "epoch": [0.0, 1.0, 0.0, 1.0],
                          "iqa_srcc": [0.2, 0.5, 0.3, 0.6], "iqa_srcc_lo": 0.1, "iqa_srcc_hi": 0.7})
    fig = mechanism.setting_curves(means)
    ax = fig.axes[0]
    assert ax.get_title() == "overall SRCC (all pairs)"
    assert list(_line(ax, "b").get_ydata()) == [0.3, 0.6] and _line(ax, "a").get_color() != _line(ax, "b").get_color()
    plt.close(fig)


def test_the_quality_figure_draws_checkpoints_at_chance_hollow_and_off_the_line():
    # as the trade-off figure and the verdicts: a classification measure at chance describes noise
    means = pd.DataFrame({"setting": ["a"] * 3, "epoch": [0.0, 1.0, 2.0], "iqa_srcc": [0.2, 0.5, 0.4],
                          "iqa_srcc_lo": 0.1, "iqa_srcc_hi": 0.7, "texture_bias": [0.5, 0.7, 0.6],
                          "texture_bias_lo": 0.4, "texture_bias_hi": 0.8, "noise_drop": [0.3, 0.2, 0.4],
                          "noise_drop_lo": 0.1, "noise_drop_hi": 0.5, "shape_at_chance": [True, False, False],
                          "at_chance": [True, True, False]})
    fig = mechanism.setting_curves(means, log_x=False)
    srcc, texture, drop = fig.axes[:3]
    assert list(_line(srcc, "a").get_xdata()) == [0.0, 1.0, 2.0]  # not a classification measure: every point
    assert list(_line(texture, "a").get_xdata()) == [1.0, 2.0] and list(_line(drop, "a").get_xdata()) == [2.0]
    for ax, points in ((texture, [[0.0, 0.5]]), (drop, [[0.0, 0.3], [1.0, 0.2]])):
        (hollow,) = ax.collections[:1]
        assert hollow.get_offsets().tolist() == points and hollow.get_facecolors().size == 0
    assert _figure_legend(fig) == ["a", "at chance (left out)"]  # the settings, then what hollow means
    plt.close(fig)


def test_the_quality_figure_draws_a_lone_checkpoints_interval_as_an_error_bar_and_says_its_seeds():
    # the noise drop defined at the last checkpoint alone, over 2 of 3 seeds: a band over one point drew nothing,
    # yet its bounds set the panel's limits and squashed the points
    means = pd.DataFrame({"setting": ["a"] * 3 + ["b"] * 3, "epoch": [0.0, 1.0, 2.0] * 2,
                          "noise_drop": [np.nan, np.nan, 0.1, 0.2, 0.3, 0.25],
                          "noise_drop_lo": [np.nan, np.nan, -1.0, 0.1, 0.2, 0.15],
                          "noise_drop_hi": [np.nan, np.nan, 1.2, 0.3, 0.4, 0.35], "at_chance": False,
                          "n_above_chance": [0, 0, 2, 3, 3, 3], "n_seeds": 3})
    fig = mechanism.setting_curves(means, log_x=False)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == 1
    (segment,) = bars[0].lines[2][0].get_segments()
    assert sorted(segment[:, 1]) == pytest.approx([-1.0, 1.2]) and segment[0, 0] == 2.0
    band_a, band_b = _bands(ax)
    assert not any(len(path.vertices) for path in band_a.get_paths())  # no band of one point
    assert sorted(_bounds(band_b)) == [0.0, 1.0, 2.0]  # b's band stays a band
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["2/3 seeds"]  # a's mean at epoch 2 is over the 2 seeds above chance; b's over all 3
    plt.close(fig)


def test_the_quality_figure_says_where_a_texture_bias_rests_on_fewer_seeds():
    """A review: the drops said "k/n seeds" where their mean was over the seeds above chance alone, the texture
    bias, a mean over the seeds above chance on the cue-conflict images, did not."""
    means = pd.DataFrame({"setting": "a", "epoch": [0.0, 1.0, 2.0], "texture_bias": [0.6, 0.5, 0.4],
                          "texture_bias_lo": [0.5, 0.4, 0.3], "texture_bias_hi": [0.7, 0.6, 0.5],
                          "shape_at_chance": False, "n_shape_above_chance": [3, 1, 3], "n_seeds": 3})
    fig = mechanism.setting_curves(means, log_x=False)
    assert [t.get_text() for t in fig.axes[0].texts] == ["1/3 seeds"]
    plt.close(fig)


def test_the_quality_figure_names_at_chance_once_in_a_legend_shared_by_settings():
    # every SRCC empty: the texture-bias panel comes first; the legend lists the settings and one hollow entry
    means = pd.DataFrame({"setting": ["a", "a", "b", "b"], "epoch": [0.0, 1.0] * 2, "iqa_srcc": np.nan,
                          "texture_bias": [0.5, 0.7, 0.5, 0.6], "texture_bias_lo": 0.4, "texture_bias_hi": 0.8,
                          "shape_at_chance": [True, False, True, False]})
    fig = mechanism.setting_curves(means, log_x=False)
    texture = fig.axes[0]
    assert texture.get_title().startswith("texture bias")
    assert _figure_legend(fig) == ["a", "b", "at chance (left out)"]
    # (each setting's one checkpoint above chance draws its interval as an error bar beside them)
    hollow = [c for c in texture.collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert [c.get_offsets().tolist() for c in hollow] == [[[0.0, 0.5]], [[0.0, 0.5]]]
    plt.close(fig)


def _interpolation_rows() -> pd.DataFrame:
    return pd.DataFrame({"alpha": [1.0, 0.0, 0.5], "iqa_srcc": [0.5, 0.3, 0.45], "noise_drop": [0.4, 0.1, 0.2],
                         "shape_bias": [0.2, 0.6, 0.4], "shape_bias_lo": [0.1, 0.5, 0.3],
                         "shape_bias_hi": [0.25, 0.7, 0.42]})


def test_the_interpolation_figures_draw_the_path_in_alpha_order_and_each_measure_in_its_panel():
    path = pd.DataFrame({"epoch": [0.0, 1.0], "iqa_srcc": [0.3, 0.5], "noise_drop": [0.1, 0.4]})
    fig = interpolation.interpolation_plane(path, _interpolation_rows(), "t")
    ax = fig.axes[0]
    theta = _line(ax, "θ(α)")
    assert list(theta.get_xdata()) == [0.3, 0.45, 0.5] and list(theta.get_ydata()) == pytest.approx([0.9, 0.8, 0.6])
    assert [(t.get_text(), t.xy) for t in ax.texts] == [("α=0", (0.3, pytest.approx(0.9))),
                                                       ("α=0.5", (0.45, pytest.approx(0.8))),
                                                       ("α=1", (0.5, pytest.approx(0.6)))]
    plt.close(fig)
    fig = interpolation.measures_vs_alpha(_interpolation_rows(), "t")
    for ax, values in zip(fig.axes, ([0.3, 0.45, 0.5], [0.6, 0.4, 0.2], [0.1, 0.2, 0.4])):
        line, = ax.get_lines()
        assert list(line.get_xdata()) == [0.0, 0.5, 1.0] and list(line.get_ydata()) == values
    band, = _bands(fig.axes[1])
    assert _bounds(band) == {0.0: pytest.approx((0.5, 0.7)), 0.5: pytest.approx((0.3, 0.42)),
                             1.0: pytest.approx((0.1, 0.25))}
    assert not _bands(fig.axes[0])  # no interval columns, no band
    plt.close(fig)


def test_the_interpolation_plane_draws_what_has_a_drop_and_counts_what_has_none():
    """An audit of page 11 (smoke): one of six checkpoints drawn, the other five (at chance, no drop) left out
    silently; a colour bar of 1.8–2.2 for that one; a "θ(α)" entry for a path of nothing; a checkpoint entry
    without a marker."""
    path = pd.DataFrame({"epoch": [0.0, 0.25, 0.5, 0.75, 1.0, 2.0], "iqa_srcc": [0.36, 0.42, 0.44, 0.45, 0.45, 0.44],
                         "noise_drop": [np.nan] * 5 + [0.0]})
    rows = _interpolation_rows().assign(noise_drop=np.nan)
    fig = interpolation.interpolation_plane(path, rows, "t")
    ax, bar = fig.axes
    assert _legend(ax) == ["checkpoints (colour: epoch)",
                           "5 of 6 checkpoints at chance on the noise set (no drop), not drawn",
                           "θ(α), every α: at chance on the noise set (no drop), not drawn"]
    points, = ax.collections
    assert points.get_offsets().tolist() == [[0.44, 1.0]] and (points.norm.vmin, points.norm.vmax) == (0.0, 2.0)
    assert bar.get_ylim() == (0.0, 2.0)  # the run's epochs
    fig.canvas.draw()
    assert ax.get_legend().legend_handles[0].get_facecolor()[0][3] > 0  # a marker to see
    assert not ax.texts and not any(len(line.get_xdata()) for line in ax.get_lines()[1:])
    plt.close(fig)
    # one α without a drop: the others drawn and labelled, it named
    fig = interpolation.interpolation_plane(path, _interpolation_rows().assign(noise_drop=[0.4, 0.1, np.nan]), "t")
    ax = fig.axes[0]
    # broken at α = 0.5 (nan there), not joining α = 0 and α = 1 across it
    assert np.array_equal(_line(ax, "θ(α)").get_xdata(), [0.3, np.nan, 0.5], equal_nan=True)
    assert [t.get_text() for t in ax.texts] == ["α=0", "α=1"]
    assert _legend(ax)[-1] == "θ(α), α = 0.5: at chance on the noise set (no drop), not drawn"
    plt.close(fig)


def test_the_interpolation_plane_breaks_its_lines_where_a_point_is_undefined_and_says_why():
    """An audit of page 11: θ(α)'s line joined α = 0 and α = 1 across an α without a point, and every point left
    out was said to be at chance on the noise set, one without an SRCC too."""
    path = pd.DataFrame({"epoch": [0.0, 1.0, 2.0, 3.0], "iqa_srcc": [np.nan, 0.4, 0.45, np.nan],
                         "noise_drop": [0.3, np.nan, 0.2, np.nan]})
    rows = pd.DataFrame({"alpha": [0.0, 0.25, 0.5, 0.75, 1.0], "iqa_srcc": [0.3, np.nan, 0.45, 0.4, 0.5],
                         "noise_drop": [0.1, 0.2, np.nan, 0.3, 0.4]})
    for with_intervals in (False, True):
        bounds = {f"{c}_{end}": rows[c] + (0.01 if end == "hi" else -0.01)
                  for c in ("iqa_srcc", "noise_drop") for end in ("lo", "hi")}
        fig = interpolation.interpolation_plane(path, rows.assign(**bounds), "t", with_intervals=with_intervals)
        ax = fig.axes[0]
        label = "θ(α), mean ± 95 % t interval" if with_intervals else "θ(α)"
        theta = next(line for line in ax.get_lines() if line.get_color() == "crimson" and len(line.get_xdata()))
        assert np.array_equal(np.asarray(theta.get_xdata(), float), [0.3, np.nan, np.nan, 0.4, 0.5], equal_nan=True)
        assert np.allclose(np.asarray(theta.get_ydata(), float), [0.9, np.nan, np.nan, 0.7, 0.6], equal_nan=True)
        assert sorted(_legend(ax)) == sorted(["checkpoints (colour: epoch)", label,
                                              "2 of 4 checkpoints without an IQA SRCC (undefined), not drawn",
                                              "2 of 4 checkpoints at chance on the noise set (no drop), not drawn",
                                              "θ(α), α = 0.25: without an IQA SRCC (undefined), not drawn",
                                              "θ(α), α = 0.5: at chance on the noise set (no drop), not drawn"])
        assert [t.get_text() for t in ax.texts] == ["α=0", "α=0.75", "α=1"]
        plt.close(fig)


def test_the_measures_against_alpha_leave_out_what_is_at_chance_and_say_what_is_undefined():
    """An audit of page 11 (smoke): a trend drawn through shape biases at chance at every α, and an empty noise
    panel with placeholder ticks and no word why."""
    rows = _interpolation_rows().assign(noise_drop=np.nan, shape_at_chance=True, at_chance=True)
    fig = interpolation.measures_vs_alpha(rows, "t")
    _, shape, noise = fig.axes
    assert not shape.get_lines() and not _bands(shape)
    hollow, = shape.collections
    assert hollow.get_offsets().tolist() == [[0.0, 0.6], [0.5, 0.4], [1.0, 0.2]]
    assert hollow.get_facecolor().size == 0 and _legend(shape) == ["at chance (left out of the trend)"]
    assert not noise.get_lines() and not noise.collections and len(noise.get_yticks()) == 0
    assert [t.get_text() for t in noise.texts] == ["undefined at every α\n(clean accuracy at chance: no drop)"]
    assert noise.get_xlim() == (-0.05, 1.05)
    plt.close(fig)
    # one α at chance: the trend and its band through the others, that α hollow; one α without a drop, said
    fig = interpolation.measures_vs_alpha(_interpolation_rows().assign(shape_at_chance=[False, False, True],
                                                                       noise_drop=[0.4, 0.1, np.nan]), "t")
    _, shape, noise = fig.axes
    line, = shape.get_lines()
    assert list(line.get_xdata()) == [0.0, 1.0] and set(_bounds(*_bands(shape))) == {0.0, 1.0}
    assert shape.collections[-1].get_offsets().tolist() == [[0.5, 0.4]]
    # broken at the α without a drop, not joined across it
    assert np.array_equal(noise.get_lines()[0].get_ydata(), [0.1, np.nan, 0.4], equal_nan=True)
    assert [t.get_text() for t in noise.texts] == ["undefined at α = 0.5 (clean accuracy at chance: no drop)"]
    plt.close(fig)


def test_the_measures_against_alpha_break_the_trend_and_band_at_an_undefined_alpha():
    """An audit of page 11: each trend was drawn through the defined α alone, joining its neighbours across an α
    whose value is undefined (its band too); an at-chance α is left out and joined across, as the synthesis'
    trends do, and drawn hollow."""
    rows = pd.DataFrame({"alpha": [0.0, 0.25, 0.5, 0.75, 1.0], "iqa_srcc": [0.3, 0.35, np.nan, 0.4, 0.5],
                         "iqa_srcc_lo": [0.2, 0.25, np.nan, 0.3, 0.4], "iqa_srcc_hi": [0.4, 0.45, np.nan, 0.5, 0.6],
                         "shape_bias": [0.6, np.nan, 0.5, 0.45, 0.4], "shape_bias_lo": [0.5, np.nan, 0.4, 0.35, 0.3],
                         "shape_bias_hi": [0.7, np.nan, 0.6, 0.55, 0.5],
                         "shape_at_chance": [False, False, True, False, False],
                         "noise_drop": [0.1, 0.2, 0.3, np.nan, 0.4], "at_chance": [False, False, False, True, False]})
    fig = interpolation.measures_vs_alpha(rows, "t")
    srcc, shape, noise = fig.axes
    line, = srcc.get_lines()
    assert np.array_equal(line.get_xdata(), [0.0, 0.25, 0.5, 0.75, 1.0])
    assert np.array_equal(line.get_ydata(), [0.3, 0.35, np.nan, 0.4, 0.5], equal_nan=True)
    band, = _bands(srcc)
    assert len(band.get_paths()) == 2  # two pieces of band, none across α = 0.5
    assert all(not (path.vertices[:, 0].min() < 0.5 < path.vertices[:, 0].max()) for path in band.get_paths())
    line, = shape.get_lines()  # the at-chance α = 0.5 left out (hollow), the undefined α = 0.25 a break
    assert np.array_equal(line.get_xdata(), [0.0, 0.25, 0.75, 1.0])
    assert np.array_equal(line.get_ydata(), [0.6, np.nan, 0.45, 0.4], equal_nan=True)
    assert shape.collections[-1].get_offsets().tolist() == [[0.5, 0.5]]
    line, = noise.get_lines()  # undefined at chance: nothing drawn there, so a break
    assert np.array_equal(line.get_ydata(), [0.1, 0.2, 0.3, np.nan, 0.4], equal_nan=True)
    plt.close(fig)


def test_the_two_afc_figure_draws_each_subset_over_every_epoch_in_its_own_colour_against_chance():
    table = pd.DataFrame({"checkpoint": ["e0", "e0", "e1", "e1"], "epoch": [0.0, 0.0, 1.0, 1.0],
                          "subset": ["photo", "drawing", "photo", "drawing"], "score": [0.6, 0.55, 0.7, 0.65],
                          "score_lo": 0.5, "score_hi": 0.8, "n_triplets": [5, 4, 6, 3]})
    fig = two_afc.score_curve(table)
    ax = fig.axes[0]
    photo, drawing = _line(ax, "photo (n = 6)"), _line(ax, "drawing (n = 3)")  # the last checkpoint's count
    assert list(photo.get_xdata()) == [0.0, 1.0] and list(photo.get_ydata()) == [0.6, 0.7]
    assert photo.get_color() != drawing.get_color()
    assert list(_line(ax, "chance").get_ydata()) == [0.5, 0.5]
    plt.close(fig)


# --------------------------------------------- labels and legends that cover neither each other nor the data (a reader)
def _covers_no_panel(fig, legend) -> bool:
    """Whether ``legend``, drawn, lies clear of every shown panel of ``fig`` (their data areas)."""
    fig.canvas.draw()
    box = legend.get_window_extent()
    return not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes if ax.get_visible())


def _family_rows(ends: dict[str, tuple[float, bool]]) -> pd.DataFrame:
    """iqa rows marked seen: each family rising to its end value (family: (end, seen)), and the "all" rows."""
    rows = [dict(distortion=family, epoch=e, srcc=end - 0.1 * (2 - e), seen_in_training=seen)
            for family, (end, seen) in ends.items() for e in (0.0, 1.0, 2.0)]
    rows += [dict(distortion="all", epoch=e, srcc=0.5, seen_in_training=None) for e in (0.0, 1.0, 2.0)]
    return pd.DataFrame(rows)


def test_the_family_figure_spreads_the_end_labels_apart_each_at_its_lines_end_in_its_colour():
    """Page 2: "gaussian blur" and "jpeg compression" were drawn on top of each other where their curves end close."""
    from clipalign_utils.plots.families import family_curves

    ends = {"gaussian_blur": (0.600, True), "jpeg_compression": (0.601, False), "impulse_noise": (0.598, False),
            "contrast_change": (0.2, False)}
    within = pd.DataFrame({"epoch": [0.0, 1.0, 2.0], "within_seen_srcc": 0.5, "within_unseen_srcc": 0.4,
                           "within_family_srcc": 0.45, "overall_srcc": 0.5})
    fig = family_curves(_family_rows(ends), within, log_x=False)
    left = fig.axes[0]
    fig.canvas.draw()
    labels = {label.get_text(): label for label in left.texts}
    assert sorted(labels) == ["contrast change", "gaussian blur", "impulse noise", "jpeg compression"]
    # the texts' boxes (an annotation's own extent holds its leader line too, which may cross a neighbour's)
    boxes = {text: matplotlib.text.Text.get_window_extent(label) for text, label in labels.items()}
    assert not any(a.overlaps(b) for k, a in enumerate(boxes.values()) for b in list(boxes.values())[k + 1:])
    # in order of the values they label, each still pointing at its own line's end, in that line's colour
    assert sorted(labels, key=lambda text: boxes[text].y0) == [
        "contrast change", "impulse noise", "gaussian blur", "jpeg compression"]
    for line, family in zip(left.get_lines(), sorted(ends)):
        label = labels[family.replace("_", " ")]
        assert label.xy == (2.0, pytest.approx(ends[family][0])) and label.get_color() == line.get_color()
    plt.close(fig)


@pytest.mark.parametrize("seen", [False, True])
def test_the_family_figure_draws_one_mean_where_every_family_is_seen_or_every_one_unseen(seen):
    """A clean world's run drew its mean over unseen families and its mean over all, the same curve, one hiding the
    other (a reader)."""
    from clipalign_utils.plots.families import family_curves

    within = pd.DataFrame({"epoch": [0.0, 1.0, 2.0], "within_seen_srcc": [0.3, 0.4, 0.5] if seen else np.nan,
                           "within_unseen_srcc": np.nan if seen else [0.3, 0.4, 0.5],
                           "within_family_srcc": [0.3, 0.4, 0.5], "overall_srcc": [0.2, 0.3, 0.4]})
    fig = family_curves(_family_rows({"blur": (0.4, seen), "noise": (0.6, seen)}), within, log_x=False)
    right = fig.axes[1]
    everyone = "seen" if seen else "unseen"
    assert {line.get_label(): list(line.get_ydata()) for line in right.get_lines()} == {
        f"mean over all families (all {everyone} in training)": [0.3, 0.4, 0.5], "overall (all pairs)": [0.2, 0.3, 0.4]}
    assert _legend(right) == [f"mean over all families (all {everyone} in training)", "overall (all pairs)"]
    plt.close(fig)


def test_the_family_figure_of_a_run_trained_elsewhere_says_nothing_of_what_its_training_saw():
    """The page said "seen in training: unknown" and its figure "all unseen", every family blue (a review)."""
    from clipalign_utils.plots.families import UNKNOWN_COLOUR, family_curves

    within = pd.DataFrame({"epoch": [0.0, 1.0, 2.0], "within_seen_srcc": np.nan, "within_unseen_srcc": [0.3, 0.4, 0.5],
                           "within_family_srcc": [0.3, 0.4, 0.5], "overall_srcc": [0.2, 0.3, 0.4]})
    fig = family_curves(_family_rows({"blur": (0.4, False), "noise": (0.6, False)}), within, log_x=False,
                        seen_known=False)
    left, right = fig.axes[:2]
    assert left.get_title() == "per family (seen in training: unknown, a run trained elsewhere)"
    assert {matplotlib.colors.to_hex(line.get_color()) for line in left.get_lines()} == {
        matplotlib.colors.to_hex(UNKNOWN_COLOUR)}
    assert _legend(right) == ["mean over all families", "overall (all pairs)"]
    plt.close(fig)


def test_the_quality_figure_lists_every_setting_in_one_legend_clear_of_the_panels():
    """Page 9: the first panel's legend covered its curves and bands."""
    settings = ["variation 0.6, held out: additive_gaussian_noise, gaussian_blur, impulse_noise", "variation 0.3",
                "clean, texture_correlation=1", "clean", "variation 0.6"]
    means = pd.DataFrame([dict(setting=s, epoch=e, **{f"{c}{end}": 0.5 + 0.05 * k + 0.1 * e + offset
                                                      for c in ("iqa_srcc", "within_unseen_srcc", "texture_bias")
                                                      for end, offset in (("", 0), ("_lo", -0.1), ("_hi", 0.1))},
                              shape_at_chance=e == 0.0)
                          for k, s in enumerate(settings) for e in (0.0, 1.0, 2.0)])
    fig = mechanism.setting_curves(means, log_x=False)
    assert _figure_legend(fig) == settings + ["at chance (left out)"]
    assert _covers_no_panel(fig, fig.legends[0])
    plt.close(fig)


def test_the_shape_bias_curve_lists_every_entry_in_a_legend_under_its_axes():
    """Page 3: the legend sat on the dashed human line (and beside the axes, it narrowed them to a third)."""
    table = pd.DataFrame({"epoch": [0.0, 1.0, 2.0], "shape_bias": [0.5, 0.7, 0.9], "lo": [0.4, 0.6, 0.8],
                          "hi": [0.6, 0.8, 0.95], "shape_at_chance": [True, False, False]})
    fig = shape_bias.shape_bias_curve(table, human_reference=0.96, log_x=False)
    ax = fig.axes[0]
    assert _figure_legend(fig) == ["95 % bootstrap CI", "model", "at chance on the cue-conflict images (left out)",
                                   "no preference", "humans (literature)"]
    assert _covers_no_panel(fig, fig.legends[0])
    assert ax.get_position().width > 0.75  # the curve keeps the figure's width
    plt.close(fig)


def test_the_saliency_figure_lists_the_model_and_every_baseline_in_one_legend_clear_of_the_panels():
    """Page 8: the legend in the CC panel sat on the object silhouette's line."""
    rows = [dict(checkpoint=name, epoch=np.nan, metric=metric, value=0.6 + k / 10, value_lo=0.55, value_hi=0.95)
            for k, name in enumerate(saliency.BASELINE_STYLES) for metric in ("cc", "nss", "sauc")]
    rows += [dict(checkpoint=f"epoch_{e:g}", epoch=e, metric=metric, value=0.5, value_lo=0.4, value_hi=0.6)
             for e in (0.0, 1.0) for metric in ("cc", "nss", "sauc")]
    fig = saliency.metrics_vs_epoch(pd.DataFrame(rows), log_x=False)
    assert _figure_legend(fig) == ["model", "centre bias", "object silhouette", "shuffled silhouette"]
    assert _covers_no_panel(fig, fig.legends[0])
    plt.close(fig)


def test_a_legend_below_of_no_entries_leaves_the_figure_as_it_is():
    from clipalign_utils.plots.common import legend_below

    fig, ax = plt.subplots(figsize=(4, 3))
    legend_below(fig, [], max_columns=2)  # it divided by zero columns (a review)
    assert fig.legends == [] and fig.get_figheight() == 3
    plt.close(fig)


def test_the_summary_figures_2afc_and_saliency_panels_draw_their_chance_line():
    """A reader review: panels (e) 2AFC and (f) saliency drew no chance line though (f)'s label said "(chance
    0.5)"; each draws a dashed grey line at its step's chance level (registry.Summary.chance), named once in the
    legend, and no panel without one names it."""
    means = _means().assign(two_afc_score=[0.45, 0.5, 0.52, 0.48], saliency_sauc=[0.5, 0.55, 0.6, 0.52])
    for column in ("iqa_srcc", "shape_bias", "noise_drop", "two_afc_score", "saliency_sauc"):
        means[f"{column}_lo"], means[f"{column}_hi"] = means[column] - 0.01, means[column] + 0.01
    noise_means = pd.DataFrame({"scale": "tiny", "sigma": 0.0, "epoch": means["epoch"], "accuracy": 0.5,
                                "accuracy_lo": 0.4, "accuracy_hi": 0.6})
    fig = tradeoff.summary_figure(means, noise_means)
    for ax in fig.axes[4:6]:
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert [(list(line.get_ydata()), line.get_color()) for line in dashed] == [([0.5, 0.5], "grey")]
    assert [ax.get_title() for ax in fig.axes[4:6]] == ["(e) 2AFC similarity", "(f) saliency correspondence"]
    assert "chance" not in fig.axes[5].get_ylabel()  # the line says it, not a number typed in the label
    assert _figure_legend(fig)[-1] == "(e), (f): chance (0.5)"
    plt.close(fig)
    fig = tradeoff.summary_figure(_means().assign(iqa_srcc_lo=0.0, iqa_srcc_hi=1.0, shape_bias_lo=0.0,
                                                  shape_bias_hi=1.0, noise_drop_lo=0.0, noise_drop_hi=1.0),
                                  noise_means)
    assert not any("chance (" in label for label in _figure_legend(fig))  # no extra panel, no line to name
    plt.close(fig)
