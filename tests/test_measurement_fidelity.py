"""The paper's measures, checked by hand: raw-embedding distances, block outputs compared location by location,
native-resolution patches, the paired early-peak test, relations net of time, the chance-corrected
drop, and the prompt and reference sets the measures run on."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipalign_utils.data import world
from clipalign_utils.data.image_sets import PatchImages, patch_grid, resize_shorter_and_crop, tile_starts
from clipalign_utils.data.iqa_embedded import DEFAULT_PHOTOS
from clipalign_utils.data.prompts import CIFAR_TEMPLATES, resolve_templates
from clipalign_utils.metrics.iqa import (alignment_scores, early_peak_test, early_window, embedding_distance,
                                         location_distance, pair_distances)
from clipalign_utils.metrics.noise import chance_corrected_drop, noise_table
from clipalign_utils.metrics.stats import partial_spearman, spearman
from clipalign_utils.metrics.tradeoff import net_of_time, verdicts

N_PERM = 2000


# --- distances on raw embeddings ---------------------------------------------------------------

def test_euclidean_and_cosine_rank_raw_embeddings_differently():
    # Same reference; the distorted embeddings differ in angle and in norm.
    ref = np.tile([[1.0, 0.0]], (3, 1))
    angle, norm = np.array([0.5, 0.1, 0.3]), np.array([1.0, 3.0, 1.2])
    dist = np.stack([norm * np.cos(angle), norm * np.sin(angle)], axis=1)
    cosine = embedding_distance(ref, dist, "cosine")
    euclidean = embedding_distance(ref, dist, "euclidean")
    np.testing.assert_allclose(cosine, 1 - np.cos(angle))
    np.testing.assert_allclose(euclidean, np.hypot(norm * np.cos(angle) - 1, norm * np.sin(angle)))
    quality = -cosine  # people agree with the angle
    assert alignment_scores(cosine, quality)["srcc"] == pytest.approx(1.0)
    # the norm-3 vector is nearest in angle but farthest in euclidean distance: ranks 1,3,2 vs 3,1,2
    assert alignment_scores(euclidean, quality)["srcc"] == pytest.approx(-0.5)
    # On unit vectors (what the cache used to hold) the two rank identically: the defect being fixed.
    unit = dist / np.linalg.norm(dist, axis=1, keepdims=True)
    assert alignment_scores(embedding_distance(ref, unit, "euclidean"), quality)["srcc"] == pytest.approx(1.0)


def test_normalized_euclidean_on_raw_vectors_by_hand():
    ref = np.array([[0.0, 10.0], [1.0, 10.0]])
    dist = np.array([[2.0, 10.0], [1.0, 16.0]])
    # squared differences [[4, 0], [0, 36]]; per-dimension means over pairs: 2 and 18
    # scaled: [[2, 0], [0, 2]]; mean over dims 1 and 1 → both distances 1
    np.testing.assert_allclose(embedding_distance(ref, dist, "normalized_euclidean"), [1.0, 1.0])
    # while plain euclidean is dominated by the large dimension: 2 vs 6
    np.testing.assert_allclose(embedding_distance(ref, dist, "euclidean"), [2.0, 6.0])


def test_location_distance_on_two_block_outputs_by_hand():
    # two pairs, each a block output of L = 2 locations × C = 2 channels, (N, L, C)
    ref = np.zeros((2, 2, 2))
    dist = np.array([[[3.0, 4.0], [0.0, 0.0]],
                     [[1.0, 0.0], [0.0, -1.0]]])
    # the pair's L·C values as one vector: |(3, 4, 0, 0)| = 5, |(1, 0, 0, −1)| = √2
    np.testing.assert_allclose(location_distance(ref, dist, "euclidean"), [5.0, np.sqrt(2.0)])
    # a mean of per-location distances would give (5 + 0)/2 and (1 + 1)/2: the authors' code does not
    assert location_distance(ref, dist, "euclidean")[1] != pytest.approx(1.0)
    # pooling first would compare the mean vectors: pair 1's (0.5, −0.5) against 0 — local damage cancels
    assert np.linalg.norm(dist[1].mean(axis=0)) == pytest.approx(np.sqrt(0.5))
    # normalized: channel scales over the 4 location pairs: c0 (9 + 0 + 1 + 0)/4 = 2.5, c1 (16 + 0 + 0 + 1)/4 = 4.25;
    # distance = sqrt of the mean of s/m over the pair's 4 values
    expected = [np.sqrt((9 / 2.5 + 16 / 4.25 + 0 + 0) / 4), np.sqrt((1 / 2.5 + 0 + 0 + 1 / 4.25) / 4)]
    np.testing.assert_allclose(location_distance(ref, dist, "normalized_euclidean"), expected)
    # cosine of the flattened outputs: (1, 0, 1, 0) against (1, 0, 0, 1) → 1 − 1/2; against itself 0
    base = np.array([[[1.0, 0.0], [1.0, 0.0]]] * 2)
    other = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    np.testing.assert_allclose(location_distance(base, other, "cosine"), [0.5, 0.0], atol=1e-12)


def test_block_normalized_euclidean_follows_the_authors_steps():
    # the authors' per-layer script, step by step: per channel, the squared difference averaged over
    # tokens; each channel divided by its mean over pairs; the square root of the mean over channels
    rng = np.random.default_rng(3)
    ref, dist = rng.normal(size=(6, 5, 4)), rng.normal(size=(6, 5, 4)) * rng.uniform(0.1, 3.0, size=4)
    per_channel = ((ref - dist) ** 2).mean(axis=1)
    authors = np.sqrt((per_channel / per_channel.mean(axis=0)).mean(axis=1))
    np.testing.assert_allclose(location_distance(ref, dist, "normalized_euclidean"), authors, rtol=1e-12)


def test_pair_distances_average_over_patches():
    # two reference images, two patches each; pair 0 = (ref 1, dist 0), pair 1 = (ref 0, dist 1)
    references = np.array([[0.0], [0.0], [1.0], [1.0]])
    distorted = np.array([[1.0], [3.0], [0.0], [2.0]])
    out = pair_distances(references, distorted, [1, 0], [0, 1], "euclidean", patches_per_image=2)
    # pair 0: |1 − 1|, |1 − 3| → 1; pair 1: |0 − 0|, |0 − 2| → 1
    np.testing.assert_allclose(out, [1.0, 1.0])
    out = pair_distances(references, distorted, [0, 1], [0, 1], "euclidean", patches_per_image=2)
    np.testing.assert_allclose(out, [2.0, 1.0])  # (1 + 3)/2; (1 + 1)/2


# --- native-resolution patches -----------------------------------------------------------------

def test_tile_starts_cover_the_length_exactly():
    assert tile_starts(100, 32) == [0, 23, 45, 68]
    assert tile_starts(32, 32) == [0] and tile_starts(20, 32) == [0]
    assert tile_starts(128, 32) == [0, 32, 64, 96]


def test_patches_cover_a_512x384_image(tmp_path):
    factor, grid = patch_grid(384, 512, 32, 48)
    assert factor == 2 and len(grid) == 48  # 192 × 256 → 6 × 8 patches
    # Patches of a real file: reassembled at their positions they are the downscaled image, all of it.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "i01.bmp")
    images = PatchImages([tmp_path / "i01.bmp"], "tid", size=32, max_patches=48)
    assert len(images) == 48 and images.patches_per_image == 48
    patches = images.batch(0, 48).numpy()
    canvas = np.full((192, 256, 3), -1, dtype=int)
    for patch, (top, left) in zip(patches, images.grid):
        canvas[top:top + 32, left:left + 32] = patch
    expected = np.asarray(Image.fromarray(pixels).resize((256, 192), Image.BICUBIC))
    np.testing.assert_array_equal(canvas, expected)
    # the full-resolution grid (no cap) also covers the image: 16 × 12 patches
    assert patch_grid(384, 512, 32, 1000) == (1, [(t, l) for t in range(0, 384, 32) for l in range(0, 512, 32)])


def test_an_image_set_decodes_its_files_once_within_the_shared_budget(tmp_path, monkeypatch):
    """A second pass over a file set (the next checkpoint) reads no file and gives the same pixels; past the
    budget nothing more is kept; a changed file is read again; a pickled set keeps none; a freed set gives
    its bytes back."""
    import os
    import pickle

    from clipalign_utils.data import image_sets
    from clipalign_utils.data.image_sets import FileImages, KeptImages

    rng = np.random.default_rng(1)
    paths = []
    for k in range(4):
        paths.append(tmp_path / f"i{k}.png")
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(paths[-1])
    reads = []
    plain = image_sets.read_rgb
    monkeypatch.setattr(image_sets, "read_rgb", lambda path: reads.append(Path(path).name) or plain(path))
    start = KeptImages.used
    monkeypatch.setattr(KeptImages, "budget", start + 3 * 32 * 32 * 3)  # room for three of the four
    images = FileImages(paths, "set", size=32)
    first = images.arrays(0, 4)
    assert reads == ["i0.png", "i1.png", "i2.png", "i3.png"] and KeptImages.used == start + 3 * 32 * 32 * 3
    np.testing.assert_array_equal(images.arrays(0, 4), first)
    assert reads[4:] == ["i3.png"]  # the one past the budget
    expected = np.stack([resize_shorter_and_crop(np.asarray(Image.open(p).convert("RGB")), 32) for p in paths])
    np.testing.assert_array_equal(first, expected)
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(paths[1])
    os.utime(paths[1], ns=(1, 1))  # another modification time
    assert images.arrays(1, 2).max() == 0 and reads[-1] == "i1.png"
    copy = pickle.loads(pickle.dumps(images))
    assert copy._kept.images == {} and copy._kept.held == 0
    del images
    assert KeptImages.used == start  # the freed set's bytes are the budget's again


def test_the_decoded_images_budget_is_an_eighth_of_memory_or_what_the_environment_says(monkeypatch, tmp_path):
    """KADID-10k's 10,206 images kept for patches are 1.5 GB: a fixed 512 MB decoded two thirds of them again at
    every checkpoint (an audit). The budget is an eighth of the machine's memory, at least 512 MB, or
    $CLIPALIGN_KEPT_IMAGES_GB; a value that is not a number is named in one line."""
    import os

    from clipalign_utils.data.image_sets import kept_images_budget
    from clipalign_utils.errors import ParameterError

    monkeypatch.delenv("CLIPALIGN_KEPT_IMAGES_GB", raising=False)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert kept_images_budget() == max(512 * 2**20, memory // 8)
    monkeypatch.setenv("CLIPALIGN_KEPT_IMAGES_GB", "0.25")
    assert kept_images_budget() == 250_000_000
    monkeypatch.setenv("CLIPALIGN_KEPT_IMAGES_GB", "lots")
    with pytest.raises(ParameterError, match="CLIPALIGN_KEPT_IMAGES_GB='lots'"):
        kept_images_budget()
    # read in the pages, so the command checks it first: one line, exit 2, no folder made
    from clipalign_utils.orchestration import cli

    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "smoke", "--out", str(out)]) == 2
    assert not out.exists()


def test_a_file_sets_identity_is_its_files_bytes_not_their_place_or_time(tmp_path):
    """The embedding cache's key for images read from files: a file replaced by another of the same size with
    the old timestamps (an archive unpacked again) is a new identity, in the same process too; the same files
    moved elsewhere keep theirs (an audit found the old key, path + size + mtime, serving stale embeddings)."""
    import os
    import shutil

    from clipalign_utils.data.image_sets import FileImages

    rng = np.random.default_rng(2)
    folder = tmp_path / "tid"
    folder.mkdir()
    paths = [folder / f"i{k}.bmp" for k in range(3)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    files, patches = FileImages(paths, "set", size=16), PatchImages(paths, "set", size=16, max_patches=4)
    before = (files.identity, patches.identity)
    assert before[0] != FileImages(paths, "set", size=16, fit="resize").identity  # how they are read counts
    stat = paths[1].stat()
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(paths[1])  # a BMP: the same size
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert paths[1].stat().st_size == stat.st_size and paths[1].stat().st_mtime_ns == stat.st_mtime_ns
    after = (files.identity, patches.identity)
    assert after[0] != before[0] and after[1] != before[1]
    moved = shutil.copytree(folder, tmp_path / "elsewhere")
    assert FileImages([moved / p.name for p in paths], "set", size=16).identity == after[0]



def test_a_checkpoints_cache_identity_is_its_content_not_its_place_or_time(tmp_path):
    """A run moved or copied elsewhere (a new path, a new mtime) keeps its embeddings; a checkpoint saved again
    with other weights of the same shapes (the same file size) does not (an audit found every step re-embedding
    a moved run: the key held the resolved path and the mtime)."""
    import shutil

    import torch

    from clipalign_utils.encoder import Encoder

    def identity(path):
        return Encoder(path, "clipalign-tiny", 32, cache_dir=tmp_path / "cache")._identity["checkpoint"]

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    original = tmp_path / "run" / "checkpoints" / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {"w": torch.arange(6.0)}}, original)
    copied = tmp_path / "moved run" / "checkpoints" / "epoch_1.pt"
    copied.parent.mkdir(parents=True)
    shutil.copy(original, copied)  # a new mtime as well as a new place
    assert identity(copied) == identity(original)
    other = tmp_path / "saved again" / "epoch_1.pt"
    other.parent.mkdir()
    torch.save({"epoch": 1, "state_dict": {"w": torch.arange(6.0) + 1}}, other)
    assert other.stat().st_size == original.stat().st_size and identity(other) != identity(original)
    legacy = tmp_path / "legacy.pt"  # the pre-zip format: hashed whole
    torch.save({"w": torch.arange(6.0)}, legacy, _use_new_zipfile_serialization=False)
    shutil.copy(legacy, tmp_path / "legacy copy.pt")
    assert "sha256" in identity(legacy) and identity(legacy) == identity(tmp_path / "legacy copy.pt")

# --- the paired early-peak test ----------------------------------------------------------------

def _pairs(srcc_by_epoch: dict[float, np.ndarray]) -> pd.DataFrame:
    """One row per checkpoint × pair: 4 references with 3 pairs each, quality fixed, distances given."""
    quality = np.tile([3.0, 2.0, 1.0], 4)
    rows = []
    for epoch, distance in srcc_by_epoch.items():
        rows.append(pd.DataFrame({"checkpoint": f"epoch_{epoch:g}", "epoch": epoch,
                                  "reference": np.repeat(["a", "b", "c", "d"], 3), "quality": quality,
                                  "model_distance": distance}))
    return pd.concat(rows, ignore_index=True)


def test_early_peak_test_by_hand_and_against_brute_force():
    perfect = np.tile([1.0, 2.0, 3.0], 4)  # distance rises as quality falls: srcc 1 at each reference
    partly = np.tile([1.0, 3.0, 2.0], 4)
    swapped = perfect.copy()
    swapped[[0, 1]] = [2.0, 1.0]  # one reference's first two pairs reversed
    pairs = _pairs({0.0: partly, 1.0: perfect, 2.0: swapped, 6.0: partly})
    assert list(early_window([0.0, 1.0, 2.0, 6.0])) == [False, True, True, False]  # 0 < epoch ≤ 2
    result = early_peak_test(pairs, n_boot=300, seed=3)
    quality = pairs.loc[pairs["epoch"] == 0, "quality"].to_numpy()
    srcc = {e: spearman(-d, quality) for e, d in [(1.0, perfect), (2.0, swapped), (6.0, partly)]}
    assert result["n_early"] == 2 and result["early_end"] == pytest.approx(2.0)
    assert result["early_peak_epoch"] == 1.0 and result["early_peak_srcc"] == pytest.approx(srcc[1.0])
    assert result["early_drop"] == pytest.approx(max(srcc[1.0], srcc[2.0]) - srcc[6.0])
    # Brute force: resample references with the same draws, materialise, take the max in each resample.
    rng = np.random.default_rng(3)
    draws = rng.integers(0, 4, size=(300, 4))
    references = np.repeat(np.arange(4), 3)
    replicates = []
    for drawn in draws:
        rows = np.concatenate([np.flatnonzero(references == g) for g in drawn])
        score = {e: spearman(-d[rows], quality[rows]) for e, d in [(1.0, perfect), (2.0, swapped), (6.0, partly)]}
        replicates.append(max(score[1.0], score[2.0]) - score[6.0])
    lo, hi = np.quantile(replicates, [0.025, 0.975])
    assert result["lo"] == pytest.approx(lo) and result["hi"] == pytest.approx(hi)
    assert result["lo"] > 0  # every resample keeps the early peak above the final value


@pytest.mark.parametrize("measure", ["2AFC score over triplets", "saliency sAUC over images"])
def test_mean_peak_test_by_hand_and_against_brute_force(measure):
    """The shared paired test for a measure that is a mean over items (the 2AFC score, saliency sAUC)."""
    from clipalign_utils.metrics.peak import mean_peak_test

    rng = np.random.default_rng(1)
    epochs = [0.0, 0.5, 1.0, 2.0, 6.0]  # early window: 0 < epoch <= 2
    means = [0.5, 0.8, 0.7, 0.75, 0.6]
    values = np.array([m + 0.1 * rng.standard_normal(7) for m in means])
    # A missing item (a constant saliency map) at a compared checkpoint leaves that item out of every mean (the
    # comparison stays paired); one missing at the untrained checkpoint, which the test does not compare, does not.
    values[1, 3] = np.nan
    values[0, 5] = np.nan
    per_item = pd.DataFrame([{"checkpoint": f"epoch_{e:g}", "epoch": e, "item": i, "value": values[k, i]}
                             for k, e in enumerate(epochs) for i in range(7)]).sample(frac=1, random_state=0)
    result = mean_peak_test(per_item, "value", "item", n_boot=400, seed=5)
    kept = values[:, [0, 1, 2, 4, 5, 6]]
    point = kept.mean(axis=1)
    assert result["n_early"] == 3 and result["n_items"] == 6 and result["final_epoch"] == 6.0
    assert result["early_peak_epoch"] == epochs[1 + int(np.argmax(point[1:4]))]
    assert result["early_drop"] == pytest.approx(point[1:4].max() - point[4])
    assert result["final_value"] == pytest.approx(point[4])
    # Brute force: the same draws of items at every checkpoint, the maximum over the window per resample.
    draws = np.random.default_rng(5).integers(0, 6, size=(400, 6))
    replicates = [max(kept[k, d].mean() for k in (1, 2, 3)) - kept[4, d].mean() for d in draws]
    q_lo, q_hi = np.quantile(replicates, [0.025, 0.975])  # the basic interval: reflected about the drop
    drop = result["early_drop"]
    assert (result["lo"], result["hi"]) == pytest.approx((2 * drop - q_hi, 2 * drop - q_lo))
    # an early checkpoint where no item is defined is out of the peak, and keeps every item in
    values[2] = np.nan
    per_item["value"] = [values[epochs.index(e), i] for e, i in zip(per_item["epoch"], per_item["item"])]
    result = mean_peak_test(per_item, "value", "item", n_boot=50, seed=5)
    assert result["n_items"] == 6 and result["early_peak_epoch"] in (0.5, 2.0)


def test_mean_peak_test_resamples_whole_groups_where_items_share_one():
    """The embedded 2AFC set's triplets share references (an audit: its intervals resampled triplets, which are
    not independent, though IQA's resample references): each replicate draws whole references, every triplet
    of a reference drawn k times counted k times, an item undefined at a compared checkpoint left out."""
    from clipalign_utils.metrics.peak import mean_peak_test

    rng = np.random.default_rng(2)
    epochs = [0.0, 1.0, 2.0, 6.0]
    values = np.array([m + 0.1 * rng.standard_normal(8) for m in (0.5, 0.8, 0.7, 0.6)])
    values[2, 7] = np.nan  # left out everywhere
    reference = {i: "abcd"[i // 2] if i < 6 else "e" for i in range(8)}  # groups of 2, 2, 2 and 2 (one out)
    per_item = pd.DataFrame([{"checkpoint": f"epoch_{e:g}", "epoch": e, "item": i, "value": values[k, i]}
                             for k, e in enumerate(epochs) for i in range(8)])
    result = mean_peak_test(per_item, "value", "item", n_boot=300, seed=4, groups=reference)
    kept = values[:, :7]
    labels = np.array([reference[i] for i in range(7)])
    names = np.unique(labels)
    draws = np.random.default_rng(4).integers(0, len(names), size=(300, len(names)))
    replicates = []
    for drawn in draws:
        columns = np.concatenate([np.flatnonzero(labels == names[g]) for g in drawn])
        replicates.append(max(kept[k, columns].mean() for k in (1, 2)) - kept[3, columns].mean())
    assert result["n_items"] == 7
    assert result["early_drop"] == pytest.approx(max(kept[1].mean(), kept[2].mean()) - kept[3].mean())
    q_lo, q_hi = np.quantile(replicates, [0.025, 0.975])  # the basic interval: reflected about the drop
    drop = result["early_drop"]
    assert (result["lo"], result["hi"]) == pytest.approx((2 * drop - q_hi, 2 * drop - q_lo))
    # items each their own group: the item draw, bit for bit
    alone = mean_peak_test(per_item, "value", "item", n_boot=300, seed=4, groups={i: i for i in range(8)})
    assert alone == mean_peak_test(per_item, "value", "item", n_boot=300, seed=4)


def test_a_bootstrap_over_one_resampling_unit_has_no_interval():
    """A bootstrap over one unit draws it in every replicate: an audit read "paired 95 % interval [-0.467, -0.467]
    over 1 references: below 0" and "0.417 [0.417, 0.417]" on a streamed trajectory over one TID2013 reference.
    The statistics stand; their intervals are undefined, for the IQA, 2AFC and saliency tests and per checkpoint."""
    from clipalign_utils.metrics.iqa import iqa_table
    from clipalign_utils.metrics.peak import mean_peak_test
    from clipalign_utils.metrics.stats import (bootstrap_ci, bootstrap_ci_grouped, bootstrap_mean_ci,
                                               bootstrap_spearman_grouped)

    partly, perfect = np.tile([1.0, 3.0, 2.0], 4), np.tile([1.0, 2.0, 3.0], 4)
    pairs = _pairs({0.0: partly, 1.0: perfect, 3.0: partly}).assign(reference="a", distortion="blur")
    test = early_peak_test(pairs, n_boot=100)
    assert test["n_references"] == 1
    assert test["early_drop"] == pytest.approx(1 - spearman(-partly, pairs["quality"][:12]))
    assert np.isnan(test["lo"]) and np.isnan(test["hi"])
    table = iqa_table(pairs[pairs["epoch"] == 1.0], distance_col="model_distance", n_boot=100)
    assert table["srcc"].iloc[0] == pytest.approx(1.0) and table[["srcc_lo", "srcc_hi"]].isna().all(axis=None)
    # two references: an interval again
    two = early_peak_test(pairs.assign(reference=np.tile(np.repeat(["a", "b"], 6), 3)), n_boot=100)
    assert np.isfinite(two["lo"]) and np.isfinite(two["hi"])
    # the mean tests (2AFC over triplets or their references, saliency over images): one item, one group
    per_item = pd.DataFrame([{"checkpoint": f"epoch_{e:g}", "epoch": e, "item": i, "value": v + i / 10}
                             for e, v in [(0.0, 0.5), (1.0, 0.8), (3.0, 0.6)] for i in range(3)])
    alone = mean_peak_test(per_item[per_item["item"] == 0], "value", "item", n_boot=100)
    one_group = mean_peak_test(per_item, "value", "item", n_boot=100, groups={i: "r" for i in range(3)})
    for result in (alone, one_group):
        assert result["early_drop"] == pytest.approx(0.2) and np.isnan(result["lo"]) and np.isnan(result["hi"])
    assert one_group["n_groups"] == 1
    assert np.isfinite(mean_peak_test(per_item, "value", "item", n_boot=100)["lo"])  # three items
    x, y = np.array([0.1, 0.5, 0.3, 0.9]), np.array([1.0, 2.0, 3.0, 4.0])
    for interval in (bootstrap_ci(1, lambda rows: 0.5, n_boot=50), bootstrap_mean_ci([0.5], n_boot=50),
                     bootstrap_ci_grouped(np.zeros(4), lambda rows: x[rows].mean(), n_boot=50),
                     bootstrap_spearman_grouped(x, y, np.zeros(4), n_boot=50)):
        assert np.isnan(interval).all()


def test_early_peak_test_without_early_checkpoints_is_nan():
    result = early_peak_test(_pairs({0.0: np.tile([1.0, 2.0, 3.0], 4), 1.0: np.tile([1.0, 2.0, 3.0], 4)}), n_boot=20)
    # the window 0 < epoch ≤ 1/3 holds no checkpoint
    assert result["n_early"] == 0 and np.isnan(result["early_drop"]) and np.isnan(result["lo"])


# --- relations net of time ---------------------------------------------------------------------

def test_partial_spearman_by_hand():
    x, y, z = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5], [1, 2, 3, 5, 4]
    # r_xy = 1 − 6·4/120 = 0.8, r_xz = 1 − 6·2/120 = 0.9, r_yz = 1 − 6·8/120 = 0.6
    expected = (0.8 - 0.9 * 0.6) / np.sqrt((1 - 0.81) * (1 - 0.36))
    rho, p_value, n = partial_spearman(x, y, z)
    assert rho == pytest.approx(expected) and n == 5
    from scipy import stats
    t = expected * np.sqrt(2 / (1 - expected**2))
    assert p_value == pytest.approx(2 * stats.t.sf(t, 2))


def test_partial_spearman_is_undefined_when_a_variable_is_ordered_as_z_up_to_rounding():
    z = np.log(np.arange(5) + 1.0)
    falling = np.array([0.5, 0.4, 0.3, 0.2, 0.1])
    assert -1 < spearman(falling, z) < -1 + 1e-12  # rounding: not exactly −1
    rho, p_value, n = partial_spearman([0.1, 0.5, 0.4, 0.3, 0.2], falling, z)
    assert np.isnan(rho) and np.isnan(p_value) and n == 5


def test_two_trends_with_independent_wiggles_do_not_move_together_net_of_time():
    epochs = np.arange(12.0)
    rng = np.random.default_rng(0)
    x = epochs + rng.normal(0, 2, 12)
    y = epochs + rng.normal(0, 2, 12)
    assert spearman(x, y) > 0.7  # the plain correlation is fooled by time
    net = net_of_time(epochs, x, y)
    assert abs(net["partial_spearman"]) < 0.5 and abs(net["diff_spearman"]) < 0.5
    # the same wiggle in both: they do move together
    together = net_of_time(epochs, x, x + 0.1 * epochs)
    assert together["partial_spearman"] > 0.9 and together["diff_spearman"] > 0.9


# --- noise drop --------------------------------------------------------------------------------

def test_chance_corrected_drop_by_hand():
    assert chance_corrected_drop(0.8, 0.6, 0.2) == pytest.approx(0.2 / 0.6)
    assert chance_corrected_drop(0.3, 0.1, 0.1) == pytest.approx(1.0)  # to chance: 1, for any clean accuracy
    assert np.isnan(chance_corrected_drop(0.1, 0.1, 0.125))  # at or below chance: nothing to lose
    table = noise_table({0: np.array([True] * 4 + [False]), 0.1: np.array([True] * 2 + [False] * 3)},
                        n_boot=20, chance=0.2)
    # clean 0.8, noisy 0.4: normalized 0.5, chance-corrected 0.4 / 0.6
    np.testing.assert_allclose(table["normalized_drop"], [0.0, 0.5])
    np.testing.assert_allclose(table["chance_corrected_drop"], [0.0, 0.4 / 0.6])


# --- verdicts ----------------------------------------------------------------------------------

def _checkpoints(iqa, shape_bias, noise_drop, early_drop=(0.1, 0.05, 0.15), at_chance=None):
    iqa = np.asarray(iqa, dtype=float)
    df = pd.DataFrame({"epoch": np.arange(len(iqa), dtype=float), "iqa_srcc": iqa, "iqa_srcc_lo": iqa - 0.01,
                       "iqa_srcc_hi": iqa + 0.01, "shape_bias": shape_bias, "clean_accuracy": 0.5,
                       "noise_drop": noise_drop, "iqa_early_drop": early_drop[0],
                       "iqa_early_drop_lo": early_drop[1], "iqa_early_drop_hi": early_drop[2]})
    if at_chance is not None:
        df["at_chance"] = at_chance
    return df


def _verdict(table, word):
    return table.loc[table["claim"].str.contains(word)].iloc[0]


def test_claim_1_needs_an_early_peak_and_a_paired_interval_above_zero():
    late_peak = np.array([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.85, 0.8])  # peak at epoch 6 > 8/3
    early_peak = np.array([0.3, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55])
    flat = [0.5] * 9
    assert _verdict(verdicts(_checkpoints(early_peak, flat, flat), n_perm=N_PERM), "peaks early")["verdict"] == "reproduced"
    row = _verdict(verdicts(_checkpoints(late_peak, flat, flat), n_perm=N_PERM), "peaks early")
    assert row["verdict"] != "reproduced" and "(outside the early window 0 < epoch ≤ 2.67)" in row["detail"]
    row = _verdict(verdicts(_checkpoints(early_peak, flat, flat, early_drop=(0.05, -0.01, 0.1)), n_perm=N_PERM),
                   "peaks early")
    assert row["verdict"] == "inconclusive" and (row["ci_lo"], row["ci_hi"]) == (-0.01, 0.1)
    row = _verdict(verdicts(_checkpoints(early_peak, flat, flat, early_drop=(-0.2, -0.3, -0.1)), n_perm=N_PERM),
                   "peaks early")
    assert row["verdict"] == "not reproduced"


def test_at_chance_checkpoints_leave_every_classification_trend():
    # Above chance, texture bias and noise drop fall; the two at-chance checkpoints at the end would
    # reverse both trends if they counted.
    texture = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.95, 0.97])
    drop = np.array([0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.9, 0.95])
    at_chance = [False] * 6 + [True] * 2
    iqa = np.linspace(0.3, 0.6, 8)
    counted = verdicts(_checkpoints(iqa, 1 - texture, drop), n_perm=N_PERM)
    excluded = verdicts(_checkpoints(iqa, 1 - texture, drop, at_chance=at_chance), n_perm=N_PERM)
    for word in ("texture bias falls", "noise drop falls"):
        assert _verdict(counted, word)["verdict"] != "reproduced"
        assert _verdict(excluded, word)["verdict"] == "reproduced"
        assert "2 at-chance checkpoints left out" in _verdict(excluded, word)["detail"]


def test_claim_4_is_not_fooled_by_two_trends():
    epochs = np.arange(12.0)
    rng = np.random.default_rng(1)
    texture = 0.9 - 0.05 * epochs + rng.normal(0, 0.05, 12)
    drop = 0.6 - 0.03 * epochs + rng.normal(0, 0.05, 12)
    iqa = 0.8 - 0.03 * epochs + rng.normal(0, 0.05, 12)  # falls with both, but wiggles on its own
    table = verdicts(_checkpoints(iqa, 1 - texture, drop), n_perm=N_PERM)
    row = _verdict(table, "co-varies")
    assert row["verdict"] != "reproduced"
    assert row["statistic"].startswith("partial spearman")


# --- what the measures run on ------------------------------------------------------------------

def test_cifar100_uses_the_clip_papers_18_templates():
    assert len(CIFAR_TEMPLATES) == 18 and len(set(CIFAR_TEMPLATES)) == 18
    assert resolve_templates("ensemble", "cifar100") == CIFAR_TEMPLATES
    assert not any("drawing" in t for t in CIFAR_TEMPLATES)
    assert "a black and white photo of the {}." in CIFAR_TEMPLATES and "a photo of the big {}." in CIFAR_TEMPLATES
    assert len(resolve_templates("ensemble", "geirhos")) == 80  # CLIP's ImageNet ensemble


def test_single_is_each_ensembles_first_template_and_own_templates_take_one_slot():
    from clipalign_utils.data.prompts import own_templates
    from clipalign_utils.errors import ParameterError

    assert resolve_templates("single", "embedded") == ("a photo of a {}.",) == resolve_templates("single", "cifar100")
    assert resolve_templates("ensemble", "embedded") == world.CAPTION_TEMPLATES
    assert resolve_templates("a {}.| a blurry {}. ", "cifar100") == ("a {}.", "a blurry {}.")
    for spec in ("a {} and a {}.", "a {} {}"):  # two slots: open_clip's format(classname) would fail in the step
        with pytest.raises(ParameterError, match="one '{}'"):
            own_templates(spec)


def test_embedded_iqa_references_exclude_the_training_texture_photos():
    assert world.TEXTURE_PHOTOS == ("brick", "grass", "gravel")
    assert not set(DEFAULT_PHOTOS) & set(world.TEXTURE_PHOTOS)


def test_a_cache_from_before_raw_embeddings_is_not_reused(tmp_path):
    import torch

    from clipalign_utils import encoder as encoder_module
    from clipalign_utils import models
    from clipalign_utils.data.image_sets import ArrayImages
    from clipalign_utils.encoder import Encoder, _sha1

    model = models.create_model("tiny", image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    images = ArrayImages(world.make_test_set(1, 0, world.WorldConfig()).images, "test")
    encoder = Encoder(checkpoint, models.open_clip_name("tiny"), 32, cache_dir=tmp_path / "cache")
    # What a version-1 cache held at its key: unit vectors (here a marker array).
    old_identity = {k: v for k, v in encoder._identity.items() if k != "format"}
    old_key = {**old_identity, "images": images.identity, "layer": "final", "kind": "image"}
    (tmp_path / "cache").mkdir()
    np.save(tmp_path / "cache" / f"{_sha1(old_key)}.npy", np.full((8, 64), 7.0, dtype=np.float32))
    raw = encoder.encode_images(images)
    assert encoder_module.CACHE_FORMAT == 2 and not np.allclose(raw, 7.0)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)


def test_a_cache_filled_on_another_device_or_torch_is_not_served(tmp_path, monkeypatch):
    import torch

    from clipalign_utils import encoder as encoder_module
    from clipalign_utils import models
    from clipalign_utils.data.image_sets import ArrayImages
    from clipalign_utils.encoder import Encoder

    model = models.create_model("tiny", image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    images = ArrayImages(world.make_test_set(1, 0, world.WorldConfig()).images, "test")
    cache = tmp_path / "cache"
    cpu = Encoder(checkpoint, models.open_clip_name("tiny"), 32, device="cpu", cache_dir=cache).encode_images(images)

    # What a GPU run would have left: a marker under the same checkpoint, images and model, on "cuda".
    monkeypatch.setattr(encoder_module, "device_type", lambda asked, resolve: "cuda")
    on_gpu = Encoder(checkpoint, models.open_clip_name("tiny"), 32, device="auto", cache_dir=cache)
    assert on_gpu._identity["computed_with"]["precision"] == "float16 autocast"
    marker = np.full_like(cpu, 7.0)
    np.save(on_gpu._cache_path({"images": images.identity, "layer": "final", "kind": "image"}), marker)
    np.testing.assert_array_equal(on_gpu.encode_images(images), marker)  # the GPU's own cache answers it
    monkeypatch.undo()
    # ... but not the CPU run, which reads its own
    again = Encoder(checkpoint, models.open_clip_name("tiny"), 32, device="cpu", cache_dir=cache)
    np.testing.assert_array_equal(again.encode_images(images), cpu)
    # a cache left by another torch is not read either: the CPU run with another version computes afresh
    monkeypatch.setattr(encoder_module, "computed_with",
                        lambda device: {"device": device, "precision": "float32", "torch": "0.0", "open_clip": "0.0"})
    other = Encoder(checkpoint, models.open_clip_name("tiny"), 32, device="cpu", cache_dir=cache)
    assert not other._cache_path({"images": images.identity, "layer": "final", "kind": "image"}).exists()
    assert len(list(cache.glob("*.npy"))) == 2


def test_the_device_type_of_auto_is_known_without_torch_on_a_machine_without_a_gpu_driver(monkeypatch):
    from clipalign_utils.encoder import device_type

    def resolve():
        raise AssertionError("resolved through torch")

    assert device_type("cpu", resolve) == "cpu" and device_type("cuda:1", resolve) == "cuda"
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("glob.glob", lambda pattern: [])
    monkeypatch.setattr("os.path.exists", lambda path: False)
    assert device_type("auto", resolve) == "cpu"
    # a driver's device node: torch decides (here it answers cuda)
    monkeypatch.setattr("glob.glob", lambda pattern: ["/dev/nvidia0"])
    assert device_type("auto", lambda: type("Device", (), {"type": "cuda"})()) == "cuda"
    # the device is in the cache key beside the precision: an Apple GPU's float32 is not the CPU's (a mutation audit)
    from clipalign_utils.encoder import computed_with

    assert computed_with("mps") != computed_with("cpu") and computed_with("cuda") != computed_with("cpu")
