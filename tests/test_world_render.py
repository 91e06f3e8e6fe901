"""The world's batched renderer: the same bytes as the per-item renderer it replaced, and its shortcuts exact."""
import hashlib

import numpy as np
import pytest

from clipalign_utils.data import world
from clipalign_utils.data.saliency import render_with_mask

VARIED = world.WorldConfig(object_placement="varied")


def digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]


# Digests of sets as the per-item renderer made them (main d7dbd5f, one image at a time), before images were
# rendered class by class in batches. Every image must stay the same bytes: runs, caches and books made before
# stay valid, and the tables of a run are unchanged.
@pytest.mark.parametrize("make, expected", [
    (lambda: world.make_pairs(512, 0, VARIED), "56b1b61566650260"),  # the default preset's world
    (lambda: world.make_pairs(300, 1, VARIED, epoch=3, start=500), "592b3181c47009ac"),
    (lambda: world.make_test_set(2, 0, VARIED), "7c489ad293013148"),
    (lambda: world.make_cue_conflict(1, 0, VARIED), "74fda9587a1c703e"),
    (lambda: world.make_pairs(256, 2, world.WorldConfig()), "a3d28974187b7091"),  # centred
    (lambda: world.make_pairs(100, 0, world.WorldConfig(image_size=64, texture_scale=2.0, texture_correlation=0.3)),
     "725124d6e5eb8df3"),
    (lambda: world.make_pairs(64, 0, world.WorldConfig(image_size=17, texture_scale=0.4)), "f9611eec4b5975a1"),
    (lambda: world.make_pairs(8, 0, world.WorldConfig(image_size=224, object_placement="varied")), "e3373b0b4b637971"),
    (lambda: world.make_pairs(100, 0, world.WorldConfig(quality_variation=0.5, object_placement="varied")),
     "9e404f3603786771"),
    (lambda: world.make_cue_conflict(1, 1, world.WorldConfig(image_size=48)), "666afc3374100cd7"),
], ids=["default", "epoch-and-offset", "test", "cue-conflict", "centred", "64px-coarse", "17px-fine", "224px",
        "quality", "cue-conflict-48px"])
def test_sets_are_the_per_item_renderers_bytes(make, expected):
    assert digest(make().images) == expected


def test_saliency_masks_and_images_are_the_per_item_renderers_bytes():
    pairs = [render_with_mask(k % 8, (k * 3) % 8, VARIED, np.random.default_rng([5, k])) for k in range(200)]
    images, masks = (np.stack(side) for side in zip(*pairs))
    assert (digest(images), digest(masks)) == ("ba079475269b5b67", "4ef7677edb376b12")


def test_a_set_rendered_in_batches_is_its_items_rendered_alone():
    config = world.WorldConfig(image_size=24, object_placement="varied", texture_correlation=0.5)
    sample = world.make_pairs(40, 7, config)
    for index in (0, 13, 39):  # a batch of one: another mix of classes around each item
        image, shape, texture, caption = world.make_pair(index, 7, config)
        assert np.array_equal(image, sample.images[index])
        assert (shape, texture, caption) == (sample.shape_labels[index], sample.texture_labels[index],
                                             sample.captions[index])


@pytest.mark.parametrize("shape", world.SHAPES)
def test_no_point_of_a_shape_lies_beyond_its_reach(shape):
    # The renderer computes only a window of REACH around each object; a point inside beyond it would be cut.
    grid = np.linspace(-2.5, 2.5, 2001)
    x, y = np.meshgrid(grid, grid)
    radius = np.hypot(x, y)[world._shape_inside(shape, x, y)]
    assert radius.max() <= world.REACH[shape]
    assert radius.max() > world.REACH[shape] - 0.05  # and the reach is tight: the window is small


@pytest.mark.parametrize("size, placement", [(32, "varied"), (32, "centred"), (17, "varied"), (64, "centred")])
def test_shape_coverage_in_windows_is_the_whole_grids(size, placement):
    # Each coverage computed the plain way, on every supersampled pixel of the image: the windows change nothing.
    coords = (np.arange(size * world.SUPERSAMPLE) + 0.5) / world.SUPERSAMPLE
    for k in range(48):
        shape = world.SHAPES[k % 8]
        rng = np.random.default_rng([3, k])
        angle, half, offset = world._draw_pose(np.random.default_rng([3, k]), placement)
        centre = size / 2 + offset * size
        gx, gy = np.meshgrid(coords - centre[0], coords - centre[1])
        x = (np.cos(angle) * gx + np.sin(angle) * gy) / (half * size)
        y = (-np.sin(angle) * gx + np.cos(angle) * gy) / (half * size)
        whole = world._shape_inside(shape, x, y).reshape(size, 2, size, 2).mean(axis=(1, 3))
        assert np.array_equal(world.shape_alpha(shape, size, rng, placement), whole), (shape, k)


def test_threads_draw_the_same_set():
    config = world.WorldConfig(quality_variation=0.5, object_placement="varied")
    n = 2 * world._chunk(config.image_size) + 5  # three chunks, the last a short one
    one, two = world.make_pairs(n, 4, config, epoch=1), world.make_pairs(n, 4, config, epoch=1, workers=2)
    assert np.array_equal(one.images, two.images) and np.array_equal(one.texture_labels, two.texture_labels)
    assert one.captions == two.captions and one.degradations == two.degradations
    assert sum(d is not None for d in two.degradations) > n / 3


def test_a_label_outside_the_classes_is_refused():
    with pytest.raises(world.ParameterError, match="shape labels must be 1 integers in 0..7"):
        world.render(8, 0, VARIED, np.random.default_rng(0))
    with pytest.raises(world.ParameterError, match="texture labels must be 2 integers in 0..7"):
        world.render_many([0, 1], [0, -1], VARIED, [np.random.default_rng(0), np.random.default_rng(1)])
