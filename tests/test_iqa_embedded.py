"""The embedded IQA set: distortion families, bundled photos and the reference observer."""

import numpy as np
import pandas as pd
import pytest

from clipalign_utils.data.distortions import DISTORTIONS, LEVEL_PARAMETERS, LEVELS, apply_distortion
from clipalign_utils.data.iqa_embedded import (
    DEFAULT_PHOTOS,
    OBSERVER_SOURCES,
    OBSERVER_TID2013_SRCC,
    OBSERVERS,
    IQASet,
    make_embedded_iqa,
    observer_quality,
    reference_photos,
    resize_square,
)
from clipalign_utils.errors import ParameterError

TID2013_NAMES = {
    "additive_gaussian_noise", "gaussian_blur", "jpeg_compression", "contrast_change",
    "mean_shift", "change_of_color_saturation", "impulse_noise", "quantization_noise",
}


@pytest.fixture(scope="module")
def photo():
    """A colour photograph at the size the model sees, as float in [0, 1]."""
    return resize_square(reference_photos(["chelsea"])["chelsea"], 32).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def iqa():
    return make_embedded_iqa(32, None, seed=0)


def test_registry_has_the_tid2013_families_and_a_parameter_row_each():
    assert TID2013_NAMES <= set(DISTORTIONS)
    assert set(LEVEL_PARAMETERS) == set(DISTORTIONS)
    for row in LEVEL_PARAMETERS.values():
        (values,) = row.values()
        assert len(values) == len(LEVELS)


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_distortion_keeps_shape_and_range(photo, name):
    for level in LEVELS:
        out = apply_distortion(photo, name, level, seed=3)
        assert out.shape == photo.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_distortion_is_deterministic_given_seed(photo, name):
    np.testing.assert_array_equal(apply_distortion(photo, name, 3, seed=7), apply_distortion(photo, name, 3, seed=7))


@pytest.mark.parametrize("name", ["additive_gaussian_noise", "impulse_noise"])
def test_random_families_depend_on_seed(photo, name):
    assert not np.array_equal(apply_distortion(photo, name, 3, seed=1), apply_distortion(photo, name, 3, seed=2))


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_distortion_error_grows_with_level(photo, name):
    mse = [np.mean((apply_distortion(photo, name, level, seed=5) - photo) ** 2) for level in LEVELS]
    assert mse[0] > 0
    assert all(a < b for a, b in zip(mse, mse[1:])), mse


def test_uint8_input_is_accepted(photo):
    as_uint8 = np.round(photo * 255).astype(np.uint8)
    out = apply_distortion(as_uint8, "gaussian_blur", 2, seed=0)
    np.testing.assert_allclose(out, apply_distortion(as_uint8 / np.float32(255), "gaussian_blur", 2, seed=0))


@pytest.mark.parametrize("level", [0, 6, -1, 2.5, True])
def test_bad_level_is_a_parameter_error(photo, level):
    with pytest.raises(ParameterError, match="level"):
        apply_distortion(photo, "gaussian_blur", level, seed=0)


def test_unknown_distortion_names_the_allowed_ones(photo):
    with pytest.raises(ParameterError, match="gaussian_blur") as info:
        apply_distortion(photo, "motion_blur", 1, seed=0)
    assert "motion_blur" in str(info.value)


def test_reference_photos_are_square_rgb_uint8_and_real():
    photos = reference_photos()
    assert len(photos) >= 8 and list(photos) == list(DEFAULT_PHOTOS)
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] == image.shape[1] >= 256
    with pytest.raises(ParameterError, match="astronaut"):
        reference_photos(["no_such_photo"])


def test_observer_constants_are_cited():
    assert OBSERVER_TID2013_SRCC["haarpsi"] == pytest.approx(0.873)
    assert set(OBSERVER_TID2013_SRCC) == set(OBSERVERS) == set(OBSERVER_SOURCES)
    from clipalign_utils.choices import REFERENCE_OBSERVERS  # what -p reference_observer is checked against

    assert tuple(OBSERVERS) == REFERENCE_OBSERVERS
    for name, source in OBSERVER_SOURCES.items():
        assert "TID2013" in source and any(ch.isdigit() for ch in source)


def test_embedded_set_shapes_and_table(iqa):
    assert isinstance(iqa, IQASet) and iqa.name == "embedded" and iqa.observer == "haarpsi"
    assert iqa.observer_srcc_tid2013 == pytest.approx(0.873)
    n_refs = len(DEFAULT_PHOTOS)
    assert iqa.references.shape == (n_refs, 32, 32, 3) and iqa.references.dtype == np.uint8
    assert iqa.reference_names == list(DEFAULT_PHOTOS)
    assert iqa.distorted.dtype == np.uint8 and iqa.distorted.shape[1:] == (32, 32, 3)
    pairs = iqa.pairs
    assert list(pairs.columns) == ["reference", "reference_index", "distortion", "level", "quality"]
    assert len(pairs) == len(iqa.distorted)
    assert set(pairs["distortion"]) == set(DISTORTIONS) and set(pairs["level"]) == set(LEVELS)
    assert (pairs["reference"] == [iqa.reference_names[i] for i in pairs["reference_index"]]).all()
    assert pairs["quality"].between(0, 1).all()
    # Only desaturating a grey photo leaves it unchanged, and those pairs are dropped.
    full = n_refs * len(DISTORTIONS) * len(LEVELS)
    dropped = pairs.groupby("reference").size().rsub(len(DISTORTIONS) * len(LEVELS))
    assert len(pairs) + dropped.sum() == full
    assert set(dropped[dropped > 0].index) == {"camera", "coins", "moon", "clock"}  # the grey photos


def test_every_distorted_image_differs_from_its_reference(iqa):
    refs = iqa.references[iqa.pairs["reference_index"].to_numpy()]
    assert (np.abs(iqa.distorted.astype(int) - refs).reshape(len(refs), -1).max(axis=1) > 0).all()


def test_embedded_set_is_deterministic(iqa):
    again = make_embedded_iqa(32, None, seed=0)
    np.testing.assert_array_equal(again.references, iqa.references)
    np.testing.assert_array_equal(again.distorted, iqa.distorted)
    pd.testing.assert_frame_equal(again.pairs, iqa.pairs)


def test_seed_changes_the_noise_but_not_the_references():
    a = make_embedded_iqa(32, None, distortions=["additive_gaussian_noise"], levels=(3,), seed=0)
    b = make_embedded_iqa(32, None, distortions=["additive_gaussian_noise"], levels=(3,), seed=1)
    np.testing.assert_array_equal(a.references, b.references)
    assert not np.array_equal(a.distorted, b.distorted)


def test_observer_quality_falls_with_level_in_every_family(iqa):
    means = iqa.pairs.groupby(["distortion", "level"])["quality"].mean().unstack()
    for family, row in means.iterrows():
        assert row.is_monotonic_decreasing and row.iloc[0] > row.iloc[-1], (family, row.tolist())
    assert iqa.pairs.groupby("level")["quality"].mean().is_monotonic_decreasing


@pytest.mark.parametrize("observer", list(OBSERVERS))
def test_undistorted_pair_scores_one(iqa, observer):
    index = np.arange(len(iqa.references))
    quality = observer_quality(iqa.references, iqa.references, index, observer, observer_scale=8)
    np.testing.assert_allclose(quality, 1.0, atol=1e-4)


def test_extra_references_and_subsets():
    rng = np.random.default_rng(0)
    world = {"world_0": rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)}
    iqa = make_embedded_iqa(
        16, world, distortions=["gaussian_blur", "jpeg_compression"], levels=(1, 5), seed=0,
        observer="ssim", photos=("astronaut", "chelsea"),
    )
    assert iqa.reference_names == ["astronaut", "chelsea", "world_0"]
    assert iqa.references.shape == (3, 16, 16, 3)
    assert len(iqa.pairs) == 3 * 2 * 2
    assert iqa.observer == "ssim" and iqa.observer_srcc_tid2013 == pytest.approx(0.637)
    with pytest.raises(ParameterError, match="clashes"):
        make_embedded_iqa(16, {"chelsea": world["world_0"]}, seed=0)


def test_bad_arguments_are_parameter_errors():
    with pytest.raises(ParameterError, match="observer"):
        make_embedded_iqa(32, None, seed=0, observer="psnr")
    with pytest.raises(ParameterError, match="level"):
        make_embedded_iqa(32, None, seed=0, levels=(0, 1))
    with pytest.raises(ParameterError, match="unknown distortion"):
        make_embedded_iqa(32, None, seed=0, distortions=["ringing"])
    # MS-SSIM's five scales need 161 px: 16 x 8 = 128 is too small.
    with pytest.raises(ParameterError, match="161"):
        make_embedded_iqa(16, None, seed=0, observer="ms_ssim", photos=("astronaut",))


def test_mean_shift_moves_towards_the_end_with_more_room():
    dark, bright = np.full((4, 4, 3), 0.2, np.float32), np.full((4, 4, 3), 0.8, np.float32)
    np.testing.assert_allclose(apply_distortion(dark, "mean_shift", 3, seed=0), 0.33, atol=1e-6)
    np.testing.assert_allclose(apply_distortion(bright, "mean_shift", 5, seed=0), 0.54, atol=1e-6)


def test_contrast_change_pulls_towards_the_images_own_mean():
    image = np.zeros((2, 2, 3), np.float32)
    image[0] = 0.1
    image[1] = 0.3  # mean 0.2
    out = apply_distortion(image, "contrast_change", 1, seed=0)  # contrast 0.85
    np.testing.assert_allclose(out[0], 0.2 - 0.85 * 0.1, atol=1e-6)
    np.testing.assert_allclose(out[1], 0.2 + 0.85 * 0.1, atol=1e-6)


def test_impulse_noise_is_salt_and_pepper_on_nested_pixel_sets():
    grey = np.full((64, 64, 3), 0.5, np.float32)
    hit_sets = []
    for level, fraction in zip(LEVELS, LEVEL_PARAMETERS["impulse_noise"]["fraction"]):
        out = apply_distortion(grey, "impulse_noise", level, seed=11)
        hit = (out != 0.5).any(axis=2)
        assert hit.sum() == max(1, round(fraction * 64 * 64))
        assert ((out[hit] == 0).all(axis=1) | (out[hit] == 1).all(axis=1)).all()  # all channels alike
        hit_sets.append(hit)
    salt = (out[hit_sets[-1]] == 1).all(axis=1).mean()  # level 5: 246 pixels
    assert 0.35 < salt < 0.65
    for weaker, stronger in zip(hit_sets, hit_sets[1:]):
        assert not (weaker & ~stronger).any()  # the same corruption, only stronger


def test_the_embedded_set_reuses_one_noise_field_across_levels():
    iqa = make_embedded_iqa(32, None, distortions=["additive_gaussian_noise", "impulse_noise"], levels=(1, 5),
                            seed=0, photos=("chelsea",), observer="ssim")
    ref = iqa.references[0].astype(float)
    rows = iqa.pairs.set_index(["distortion", "level"]).index
    image = {key: iqa.distorted[i].astype(float) for i, key in enumerate(rows)}
    weak, strong = image["additive_gaussian_noise", 1] - ref, image["additive_gaussian_noise", 5] - ref
    unclipped = (ref > 60) & (ref < 195)  # far from 0 and 255: level 5's noise (σ 38) is rarely clipped there
    assert np.corrcoef(weak[unclipped], strong[unclipped])[0, 1] > 0.8
    hit1, hit5 = ((image["impulse_noise", level] != ref).any(axis=2) for level in (1, 5))
    assert hit1.any() and not (hit1 & ~hit5).any()
