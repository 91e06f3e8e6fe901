"""The foundation: world generator, config, checkpoints, encoder and its cache, runner."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from clipalign_utils import allocator, checkpoints, config, models, train
from clipalign_utils.data import world
from clipalign_utils.data.image_sets import ArrayImages
from clipalign_utils.encoder import Encoder, preprocess_batch
from clipalign_utils.errors import CheckpointError, ParameterError

CFG = world.WorldConfig(image_size=32, texture_correlation=0.8)


# ----------------------------------------------------------------------------- world
def test_world_is_deterministic_per_seed():
    a, b = world.make_pairs(16, 3, CFG), world.make_pairs(16, 3, CFG)
    c = world.make_pairs(16, 4, CFG)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert not np.array_equal(a.images, c.images)
    # An item is the same whether made alone or inside a range (resumable, order-free).
    image, shape, texture, caption = world.make_pair(5, 3, CFG)
    assert np.array_equal(image, a.images[5]) and caption == a.captions[5]


def test_world_classes_are_balanced_and_captions_name_the_shape():
    sample = world.make_pairs(80, 0, CFG)
    assert np.bincount(sample.shape_labels, minlength=8).tolist() == [10] * 8
    for label, caption in zip(sample.shape_labels, sample.captions):
        assert world.SHAPES[label] in caption
        assert not any(t in caption for t in world.TEXTURES)


def test_texture_correlation_sets_the_canonical_fraction():
    n = 2000
    for correlation in (0.0, 0.8, 1.0):
        sample = world.make_pairs(n, 1, world.WorldConfig(texture_correlation=correlation))
        fraction = (sample.shape_labels == sample.texture_labels).mean()
        # Binomial standard error at n=2000 is <= 0.011; 4 of them is a safe bound.
        assert abs(fraction - correlation) < 0.045


def test_cue_conflict_labels():
    sample = world.make_cue_conflict(2, 0, CFG)
    assert len(sample) == 56 * 2
    assert np.all(sample.shape_labels != sample.texture_labels)
    pairs, counts = np.unique(np.stack([sample.shape_labels, sample.texture_labels]), axis=1, return_counts=True)
    assert pairs.shape[1] == 56 and set(counts) == {2}


def test_test_split_differs_from_training_split():
    assert not np.array_equal(world.make_test_set(2, 0, CFG).images, world.make_pairs(16, 0, CFG).images)


def test_world_config_rejects_bad_values():
    with pytest.raises(ParameterError, match="texture_correlation"):
        world.WorldConfig(texture_correlation=1.5)


def test_evaluation_world_keeps_the_runs_placement_and_texture_but_drops_quality():
    params = config.resolve("smoke", object_placement="centred", texture_scale=2.0, texture_correlation=0.6,
                            quality_variation=0.5)
    assert world.evaluation_world(params) == world.WorldConfig(32, 0.6, 2.0, object_placement="centred")
    assert world.training_world(params).object_placement == "centred"
    # the noise step's test images follow it: centred ones are not the varied ones
    centred = world.make_test_set(1, 0, world.evaluation_world(params)).images
    varied = world.make_test_set(1, 0, world.evaluation_world({**params, "object_placement": "varied"})).images
    assert not np.array_equal(centred, varied)


def test_array_images_identity_tells_apart_the_same_bytes_in_another_shape():
    pixels = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    same, reshaped = ArrayImages(pixels.copy(), "a"), ArrayImages(pixels.reshape(1, 16, 8, 3), "b")
    assert ArrayImages(pixels, "c").identity == same.identity
    assert reshaped.identity != same.identity  # one cache entry would serve the other's embeddings
    assert ArrayImages(pixels.astype(np.float32) / 255, "d").identity != same.identity


# ---------------------------------------------------------------------------- config
def test_resolve_coerces_command_line_strings():
    params = config.resolve("smoke", epochs="3", lr="0.01", fresh_data="true", sigmas="0.1,0.2")
    assert params["epochs"] == 3 and params["lr"] == 0.01 and params["fresh_data"] is True
    assert params["sigmas"] == (0.1, 0.2)
    # What papermill's -p gives: one number for a one-value list; a YAML boolean is no count or seed.
    assert config.resolve("smoke", sigmas=0.1, early_checkpoints=0.5)["sigmas"] == (0.1,)
    assert config.resolve("smoke", early_checkpoints=0.5)["early_checkpoints"] == (0.5,)
    for name in ("n_boot", "eval_seed", "lr"):
        with pytest.raises(ParameterError, match=f"{name}=True has the wrong type"):
            config.resolve("smoke", **{name: True})
    # papermill's -p sigmas "[0.1, 0.2]": a list written as one string, its brackets dropped
    assert config.resolve("smoke", sigmas="[0.1, 0.2]")["sigmas"] == (0.1, 0.2)
    # -p fresh_data=1 / =no, as the bool reading takes them; a None override is no override (the preset's value)
    assert config.resolve("smoke", fresh_data="1")["fresh_data"] is True
    assert config.resolve("smoke", fresh_data="no", epochs=None)["fresh_data"] is False
    assert config.resolve("smoke", epochs=None)["epochs"] == 2


def test_a_presets_changes_override_the_shared_defaults():
    """smoke's lighter resampling (and its steps' own changes) win over the shared defaults; default keeps them."""
    assert (config.PRESETS["smoke"]["n_boot"], config.PRESETS["smoke"]["n_perm"]) == (50, 500)
    assert (config.PRESETS["default"]["n_boot"], config.PRESETS["default"]["n_perm"]) == (1000, 10000)
    assert (config.PRESETS["smoke"]["epochs"], config.PRESETS["smoke"]["iqa_levels"]) == (2, (1, 3, 5))


def test_resolve_takes_both_ends_of_a_closed_range():
    """[0, 1] and 1..5 include their ends: a check off by one at either end would refuse a valid value."""
    params = config.resolve("smoke", quality_variation="1", alignment_weight="1", iqa_levels="1,5")
    assert (params["quality_variation"], params["alignment_weight"], params["iqa_levels"]) == (1.0, 1.0, (1, 5))
    assert config.resolve("smoke", quality_variation="0", alignment_weight="0")["alignment_weight"] == 0.0


@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "huge"}, "unknown preset 'huge'"),
    ({"iqa_levels": (1, 9)}, r"parameter iqa_levels=\(1, 9\): give distortion levels from 1 to 5"),
    ({"epochs": "three"}, "epochs='three' has the wrong type"),
    ({"iqa_dataset": "imagenet"}, "iqa_dataset='imagenet': choose one of"),
    ({"learning_rate": 1}, "unknown parameter 'learning_rate'"),
    ({"samples_per_epoch": 10}, "samples_per_epoch=10 is smaller than batch_size"),
    # a count given as a fraction (papermill's -p epochs 2.5) is refused, not truncated to 2
    ({"epochs": 2.5}, "epochs=2.5 has the wrong type: expected int"),
    ({"fresh_data": "maybe"}, "fresh_data='maybe' has the wrong type: expected bool"),
    # each range's bounds, at the first value outside it
    ({"epochs": 0}, "parameter epochs must be positive, got 0"),
    ({"eval_batch_size": 0}, "parameter eval_batch_size must be positive, got 0"),
    ({"n_boot": 0}, "parameter n_boot must be positive, got 0"),
    ({"lr": 0}, "parameter lr must be positive, got 0.0"),
    ({"early_checkpoints": "0.5,1"}, r"early_checkpoints are fractions of the first epoch, each in \(0, 1\)"),
    ({"early_checkpoints": "0,0.5"}, r"early_checkpoints are fractions of the first epoch, each in \(0, 1\)"),
    ({"iqa_levels": "0,1"}, r"parameter iqa_levels=\(0, 1\): give distortion levels from 1 to 5"),
    ({"iqa_levels": ""}, r"parameter iqa_levels=\(\): give distortion levels from 1 to 5"),
    ({"alignment_weight": 1.5}, r"parameter alignment_weight must lie in \[0, 1\], got 1.5"),
    ({"alignment_weight": -0.5}, r"parameter alignment_weight must lie in \[0, 1\], got -0.5"),
    ({"quality_variation": 1.5}, r"parameter quality_variation must lie in \[0, 1\], got 1.5"),
])
def test_resolve_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        config.resolve(**kwargs)


# ------------------------------------------------------------------------ checkpoints
def test_checkpoint_schedule_is_dense_early():
    schedule = train.checkpoint_schedule(steps_per_epoch=100, epochs=3, early=(0.125, 0.25, 0.5))
    assert schedule == {0: 0.0, 12: 0.12, 25: 0.25, 50: 0.5, 100: 1.0, 200: 2.0, 300: 3.0}
    from clipalign_utils.schedule import CHECKPOINT_FILE, checkpoint_file, format_epoch

    assert format_epoch(0.25) == "0.25" and format_epoch(3.0) == "3"
    # the file a checkpoint is saved in, and what a run's or a trajectory's checkpoint files are read by
    assert [checkpoint_file(e) for e in (0.0, 0.12, 0.123456, 3.0)] == ["epoch_0.pt", "epoch_0.12.pt",
                                                                       "epoch_0.1235.pt", "epoch_3.pt"]
    assert [bool(CHECKPOINT_FILE.match(n)) for n in ("epoch_0.1235.pt", "epoch_3.pt", "epoch_latest.pt",
                                                     "epoch_3.pt.part")] == [True, True, False, False]


def test_an_early_checkpoint_is_named_by_its_steps_epoch_to_four_places_and_a_partial_batch_is_dropped():
    # 1000 steps an epoch: 0.001 is step 1 (epoch_0.001, not rounded into epoch_0, the untrained model's file);
    # 0.3333 is step 333.3 -> 333, epoch 0.333
    from clipalign_utils.schedule import checkpoint_schedule, epoch_steps

    assert checkpoint_schedule(1000, 1, (0.001, 0.3333)) == {0: 0.0, 1: 0.001, 333: 0.333, 1000: 1.0}
    assert checkpoint_schedule(3, 2, (1 / 3,)) == {0: 0.0, 1: 0.3333, 3: 1.0, 6: 2.0}
    assert epoch_steps({"samples_per_epoch": 100, "batch_size": 32}) == 3  # 4 samples left over: no 4th step


def test_a_runs_checkpoints_are_in_epoch_order_past_epoch_9(tmp_path):
    # as names, epoch_10 < epoch_2 and epoch_0.5 < epoch_0: resuming would take the wrong one for the latest
    (tmp_path / "checkpoints").mkdir()
    for epoch in ("10", "2", "0.5", "0", "latest"):
        (tmp_path / "checkpoints" / f"epoch_{epoch}.pt").write_bytes(b"")
    (tmp_path / "params.txt").write_text("model: clipalign-tiny\nforce_image_size: 32\n")
    run = checkpoints.discover_run(tmp_path)
    assert [c.epoch for c in run.checkpoints] == [0.0, 0.5, 2.0, 10.0]  # epoch_latest.pt skipped
    # resuming and the book's count read the same list (the resume's sort died on float("latest"))
    from clipalign_utils.layout import RunDir

    expected = ["epoch_0.pt", "epoch_0.5.pt", "epoch_2.pt", "epoch_10.pt"]
    assert [p.name for p in train._saved_checkpoints(tmp_path / "checkpoints")] == expected
    assert [p.name for p in RunDir(tmp_path).checkpoint_files()] == expected
    for epoch in ("10", "2", "0.5", "0"):
        (tmp_path / "checkpoints" / f"epoch_{epoch}.pt").unlink()
    assert RunDir(tmp_path).checkpoint_files() == [] and RunDir(tmp_path).holds_others_checkpoints()


def test_params_txt_values_keep_their_colons_and_spaces(tmp_path):
    from clipalign_utils.layout import read_params_txt

    (tmp_path / "params.txt").write_text("model: hf-hub:timm/ViT-B-16\nimage_mean: (0.5, 0.5, 0.5)\n"
                                         "force_image_size: 32\nresume: None\n")
    assert read_params_txt(tmp_path / "params.txt") == {
        "model": "hf-hub:timm/ViT-B-16", "image_mean": "(0.5, 0.5, 0.5)", "force_image_size": "32", "resume": "None"}


def test_a_checkpoint_save_that_dies_midway_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    # what resuming relies on: the latest checkpoint is either the old one or the new one, never half of one
    path = tmp_path / "checkpoints" / "epoch_1.pt"
    train._atomic_torch_save({"step": 4, "state_dict": {"w": torch.arange(3.0)}}, path)
    before = path.read_bytes()

    def dies_midway(obj, f):
        Path(f).write_bytes(before[:100])
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        train._atomic_torch_save({"step": 8, "state_dict": {"w": torch.zeros(3)}}, path)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["epoch_1.pt"]


def test_smoke_run_checkpoints_load_into_open_clip(smoke_run):
    run = checkpoints.discover_run(smoke_run)
    epochs = [c.epoch for c in run.checkpoints]
    params = config.resolve("smoke")
    assert epochs[0] == 0 and epochs[-1] == params["epochs"]
    assert sum(0 < e < 1 for e in epochs) >= 3
    assert run.model_name == "clipalign-tiny" and run.image_size == 32
    last = run.checkpoints[-1].path
    loaded = open_clip.create_model(run.model_name, pretrained=str(last), force_image_size=32)
    saved = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    # Training changed the weights.
    first = torch.load(run.checkpoints[0].path, map_location="cpu", weights_only=True)["state_dict"]
    assert not torch.equal(first["visual.conv1.weight"], saved["visual.conv1.weight"])


@pytest.mark.parametrize("scale", ["tiny", "vit-tiny"])
def test_a_loaded_checkpoint_is_exactly_its_weights_without_drawing_random_ones(scale, tmp_path):
    trained = models.create_model(scale, image_size=32, seed=3)
    path = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, path)
    normal_ = torch.nn.init.normal_
    drawn = []
    torch.nn.init.normal_ = lambda tensor, *args, **kwargs: drawn.append(tensor) or normal_(tensor, *args, **kwargs)
    try:
        loaded = models.load_checkpoint_model(path, models.open_clip_name(scale), 32)
        assert drawn == []  # no weight drawn only to be overwritten
        models.create_model(scale, image_size=32)
        assert drawn  # a fresh model still draws its weights
    finally:
        torch.nn.init.normal_ = normal_
    for name, tensor in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert torch.equal(loaded.attn_mask, trained.attn_mask)  # built, not loaded: the causal mask
    with models.weights_left_undrawn():
        kept = torch.full((3,), 7.0)
        assert torch.equal(torch.nn.init.kaiming_uniform_(kept), torch.full((3,), 7.0))
        # another thread meanwhile: its model draws its weights
        elsewhere = []
        thread = threading.Thread(target=lambda: elsewhere.append(torch.nn.init.constant_(torch.zeros(3), 5.0)))
        thread.start()
        thread.join()
        assert torch.equal(elsewhere[0], torch.full((3,), 5.0))
    assert all(getattr(torch.nn.init, name).__module__ == "torch.nn.init" for name in models.INITIALISERS)
    (tmp_path / "epoch_2.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        models.load_checkpoint_model(tmp_path / "epoch_2.pt", models.open_clip_name(scale), 32)
    assert all(getattr(torch.nn.init, name).__module__ == "torch.nn.init" for name in models.INITIALISERS)


def test_a_checkpoint_saved_from_a_compiled_model_is_refused_saying_so(tmp_path):
    """Weights saved from a torch.compile'd model carry '_orig_mod.' in every name, which open_clip's loader does not
    strip (it strips DDP's 'module.'): the error said "a checkpoint of another architecture?"."""
    trained = models.create_model("tiny", image_size=32, seed=3)
    path = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {f"_orig_mod.{k}": v for k, v in trained.state_dict().items()}}, path)
    with pytest.raises(CheckpointError) as refused:
        models.load_checkpoint_model(path, models.open_clip_name("tiny"), 32)
    assert str(refused.value) == (
        f"checkpoint {path} could not be loaded into clipalign-tiny: its weights were saved from a torch.compile'd "
        "model (their names begin with '_orig_mod.'): save the model's own, model._orig_mod.state_dict(), or strip "
        "that prefix from each name in the checkpoint's state_dict")


def test_discover_run_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoints.discover_run(tmp_path / "missing")
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(CheckpointError, match="holds no epoch_<N>.pt"):
        checkpoints.discover_run(tmp_path)
    (tmp_path / "checkpoints" / "epoch_1.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "params.txt").write_text("model: clipalign-tiny\n")
    run = checkpoints.discover_run(tmp_path)
    with pytest.raises(CheckpointError, match="epoch_1.pt could not be loaded"):
        Encoder(run.checkpoints[0], run.model_name).encode_images(ArrayImages(np.zeros((1, 32, 32, 3), np.uint8), "x"))


# ---------------------------------------------------------------------------- encoder
def test_encoder_matches_plain_encode_image_and_caches(smoke_run, tmp_path, monkeypatch):
    run = checkpoints.discover_run(smoke_run)
    images = world.make_test_set(5, 0, CFG).images  # 40 images, 3 batches of 16
    encoder = Encoder(run.checkpoints[-1], run.model_name, 32, batch_size=16, cache_dir=tmp_path)
    batched = encoder.encode_images(ArrayImages(images, "test"))

    model = models.load_checkpoint_model(run.checkpoints[-1].path, run.model_name, 32)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        plain = model.encode_image(x).numpy()
    # raw projected embeddings, not unit vectors: the distances of the IQA step are taken on these
    np.testing.assert_allclose(batched, plain, atol=1e-5)
    assert not np.allclose(np.linalg.norm(batched, axis=1), 1, atol=1e-3)

    # A second encoder over the same checkpoint and images answers from the cache: no model load.
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded on a cache hit")
    monkeypatch.setattr(models, "load_checkpoint_model", no_load)
    again = Encoder(run.checkpoints[-1], run.model_name, 32, batch_size=16, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.encode_images(ArrayImages(images.copy(), "same pixels")), batched)
    assert again._model is None
    # The package's code or a model config it registers changed (an audit: a config edited in place was answered
    # with the embeddings of the model before it): encoded again.
    from clipalign_utils import encoder as encoder_module
    from clipalign_utils.data import cache

    package = Path(cache.__file__).resolve().parents[1]
    assert package / "model_configs" / "clipalign-tiny.json" in cache.source_files(package)
    monkeypatch.setattr(encoder_module, "source_hash", lambda: "other code")
    changed = Encoder(run.checkpoints[-1], run.model_name, 32, batch_size=16, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="the model was loaded on a cache hit"):
        changed.encode_images(ArrayImages(images, "test"))


def test_preprocess_resizes_like_open_clip():
    images = torch.full((2, 64, 48, 3), 255, dtype=torch.uint8)
    x = preprocess_batch(images, 32, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    assert x.shape == (2, 3, 32, 32)
    assert torch.allclose(x, torch.ones_like(x), atol=1e-4)


def test_preprocess_resizes_shorter_side_antialiased_crops_the_centre_and_normalises():
    """open_clip's evaluation transform on a non-square image: the shorter side to 32 (bicubic, antialiased), the
    centre crop, (x − mean) / std. A mutation audit found the fast tier held only a constant image: dropping the
    antialias, cropping the top-left corner, multiplying by std or resizing only when the height differs passed it;
    a float image in [0, 1] must give what its uint8 pixels give (divided by 255 once)."""
    from clipalign_utils.data.image_sets import resize_shorter_and_crop
    from clipalign_utils.encoder import resize_to_input

    for shape in [(64, 48, 3), (32, 48, 3)]:  # the shorter side resized, or already 32 and only cropped
        image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
        resized = resize_to_input(torch.from_numpy(image)[None], 32)[0].permute(1, 2, 0).numpy()
        # PIL's bicubic (open_clip's transform on a PIL image), rounded to uint8: within about 2 levels of 255
        pillow = resize_shorter_and_crop(image, 32).astype(np.float32) / 255
        assert resized.shape == (32, 32, 3) and np.abs(resized - pillow).mean() < 1.5 / 255
    floats = resize_to_input(torch.from_numpy(image.astype(np.float32) / 255)[None], 32)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(floats, resized, atol=1e-6)
    white = torch.full((1, 40, 32, 3), 255, dtype=torch.uint8)
    x = preprocess_batch(white, 32, torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25))
    np.testing.assert_allclose(x.numpy(), 2.0, atol=1e-5)  # (1 − 0.5) / 0.25


def test_encode_layers_recomputes_when_one_blocks_cache_file_is_empty(tmp_path):
    """Every layer's entry is read only when all of them read: one entry left empty (a full disk) computes the
    layers again rather than answering None for that block (a mutation audit: the check could go unnoticed)."""
    model = models.create_model("tiny", image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    images = ArrayImages(world.make_test_set(1, 0, CFG).images[:4], "test")
    encoder = Encoder(checkpoint, models.open_clip_name("tiny"), 32, cache_dir=tmp_path / "cache")
    layers = encoder.encode_layers(images)
    entry = encoder._cache_path({"images": images.identity, "layer": "layer2", "kind": "image"})
    entry.write_bytes(b"")  # left empty (numpy's EOFError, not the ValueError of a file cut inside its header)
    again = Encoder(checkpoint, models.open_clip_name("tiny"), 32, cache_dir=tmp_path / "cache").encode_layers(images)
    assert list(again) == list(layers)
    for name in layers:
        np.testing.assert_array_equal(again[name], layers[name])
    np.testing.assert_array_equal(np.load(entry), layers["layer2"])  # kept whole again


def test_zero_shot_logits_are_cosines_of_the_raw_embeddings(tmp_path):
    """The embeddings are kept raw; the zero-shot logits normalise them (the shape step's ImageNet head takes the
    softmax of 100 × these, so raw dot products would change its decisions, not only the scale)."""
    model = models.create_model("tiny", image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    images = ArrayImages(world.make_test_set(1, 0, CFG).images[:4], "test")
    encoder = Encoder(checkpoint, models.open_clip_name("tiny"), 32)
    classnames, templates = ["circle", "square", "star"], ["a photo of a {}.", "a drawing of a {}."]
    logits = encoder.zero_shot_logits(images, classnames, templates)
    embeddings, weights = encoder.encode_images(images), encoder.zero_shot_weights(classnames, templates)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=0), 1, atol=1e-5)  # unit class weights
    assert not np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-3)
    cosine = np.array([[e @ w / np.linalg.norm(e) / np.linalg.norm(w) for w in weights.T] for e in embeddings])
    np.testing.assert_allclose(logits, cosine, atol=1e-5)
    np.testing.assert_array_equal(encoder.classify(images, classnames, templates), cosine.argmax(axis=1))


def _text_model_with_openai_context() -> torch.nn.Module:
    """A small CLIP whose text tower has OpenAI's 77 positions (our scales use 16)."""
    torch.manual_seed(0)
    return open_clip.model.CLIP(16, {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16},
                                {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                                 "layers": 2}).eval()


def _lengths_through(model) -> list[int]:
    """The sequence length of each batch the text transformer is given (NLD: batch first)."""
    lengths = []
    model.transformer.register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[1]))
    return lengths


def test_prompts_go_through_the_text_tower_as_long_as_the_longest_and_encode_as_the_whole_context():
    model = _text_model_with_openai_context()
    tokens = open_clip.get_tokenizer("ViT-B-32")(["a", "a b c d e f", "b c"])
    lengths = _lengths_through(model)
    with torch.no_grad():
        whole = model.encode_text(tokens, normalize=True)
        trimmed = models.encode_prompts(model, tokens, normalize=True)
        raw = models.encode_prompts(model, tokens)
    # start-of-text, the six one-letter words, end-of-text: 8 positions, not 77
    assert lengths == [77, 8, 8]
    np.testing.assert_allclose(trimmed.numpy(), whole.numpy(), atol=1e-6)
    np.testing.assert_allclose(torch.nn.functional.normalize(raw, dim=-1).numpy(), whole.numpy(), atol=1e-6)
    assert not torch.allclose(trimmed[0], trimmed[2])  # each prompt pooled at its own end of text


def test_training_over_the_longest_caption_has_the_whole_contexts_loss_and_gradients():
    """The trainer's text tower (``encode_text_over_prompts``) is the same function: a CLIP loss step on the
    tiny model gives the whole context's loss and gradients but for rounding, untouched rows included."""
    from open_clip.loss import ClipLoss

    tokens = models.tokenizer_for("clipalign-tiny")([t.format(s) for t in world.CAPTION_TEMPLATES for s in world.SHAPES])
    images = torch.from_numpy(world.make_test_set(6, 0, CFG).images[:len(tokens)]).permute(0, 3, 1, 2).float() / 255
    grads, losses, lengths = [], [], []
    for trimmed in (False, True):
        model = models.create_model("tiny", image_size=32, seed=0)
        lengths = _lengths_through(model)
        if trimmed:
            assert models.encode_text_over_prompts(model) is model
        out = model(images[:len(tokens)], tokens)
        loss = ClipLoss()(out["image_features"], out["text_features"], out["logit_scale"])
        loss.backward()
        losses.append(loss.item())
        grads.append({name: p.grad for name, p in model.named_parameters()})
    assert lengths == [9]  # "a picture of a triangle." and the like: 7 words, start and end of text
    assert losses[1] == pytest.approx(losses[0], abs=1e-6)
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=5e-5, rtol=1e-4)  # gradients of order 1
    assert torch.count_nonzero(grads[1]["positional_embedding"][9:]) == 0  # rows after every caption: untouched


def test_a_model_over_its_prompts_keeps_its_state_and_is_freed_once_dropped():
    import copy
    import weakref

    model = models.create_model("tiny", image_size=32, seed=0)
    keys = list(model.state_dict())
    assert isinstance(models.encode_text_over_prompts(model), models.PromptLengthCLIP)
    assert list(model.state_dict()) == keys  # checkpoints load into a plain CLIP as before
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.positional_embedding.zero_()
    tokens = models.tokenizer_for("clipalign-tiny")(["a photo of a circle."])
    assert not torch.equal(twin.encode_text(tokens), model.encode_text(tokens))  # each copy its own weights
    gone = weakref.ref(model)
    del model
    assert gone() is None  # no reference cycle: a checkpoint's model goes when its Encoder does


def test_a_text_tower_pooled_at_the_last_position_runs_its_whole_context():
    model = _text_model_with_openai_context()
    model.text_pool_type = "last"  # reads a padding position: nothing may be cut
    tokens = open_clip.get_tokenizer("ViT-B-32")(["a b", "c"])
    lengths = _lengths_through(model)
    with torch.no_grad():
        whole = model.encode_text(tokens)
        assert models.encode_text_over_prompts(model) is model and type(model) is open_clip.model.CLIP
        assert torch.equal(model.encode_text(tokens), whole)
    assert lengths == [77, 77] and not models.encodes_prompts_only(model)


@pytest.mark.parametrize("scale, blocks, locations", [
    ("tiny", ["stem", "layer1", "layer2", "layer3", "layer4"], [64, 64, 16, 4, 1]),  # 32 px: 8×8 … 1×1 maps
    # the embeddings entering block 1 (Hugging Face's hidden_states[0], the authors' layer 0), then the blocks:
    # class token + 8×8 patches each
    ("vit-tiny", ["embeddings", "block1", "block2", "block3", "block4"], [65] * 5),
])
def test_encode_layers_gives_every_block_per_location_and_the_final_embedding(scale, blocks, locations, tmp_path):
    model = models.create_model(scale, image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    images = ArrayImages(world.make_test_set(1, 0, CFG).images, "test")
    encoder = Encoder(checkpoint, models.open_clip_name(scale), 32, batch_size=3, cache_dir=tmp_path / "cache")
    layers = encoder.encode_layers(images)
    assert list(layers) == blocks + ["final"]
    assert [layers[name].shape[:2] for name in blocks] == [(8, n) for n in locations]
    # the same numbers as open_clip's forward_intermediates, not pooled and not normalised
    model.eval()
    x = preprocess_batch(torch.from_numpy(images.images), 32, torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1),
                         torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1))
    with torch.no_grad():
        reference = model.forward_intermediates(image=x, normalize=False)
    first = reference["image_intermediates"][0]
    if first.ndim == 4:  # ResNet stem: (N, C, H, W) → (N, H·W, C)
        first = first.flatten(2).transpose(1, 2)
    returned = [name for name in blocks if name != "embeddings"]  # what forward_intermediates returns
    np.testing.assert_allclose(layers[returned[0]][:, -first.shape[1]:], first.numpy(), atol=1e-4)
    if "embeddings" in blocks:  # patches, class token and positions after ln_pre, class token first
        with torch.no_grad():
            np.testing.assert_allclose(layers["embeddings"], model.visual._embeds(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(layers["final"], reference["image_features"].numpy(), atol=1e-4)
    np.testing.assert_allclose(layers["final"], encoder.encode_images(images), atol=1e-5)
    # A second call is served from the cache without a forward pass, nor even loading the model.
    fresh = Encoder(checkpoint, models.open_clip_name(scale), 32, cache_dir=tmp_path / "cache")
    cached = fresh.encode_layers(images)
    assert list(cached) == list(layers) and all(np.array_equal(cached[k], layers[k]) for k in layers)
    assert fresh._model is None


def test_a_page_resolves_its_parameters_cell_and_shows_where_each_value_came_from(capsys, tmp_path):
    from clipalign_utils import config, record

    namespace = {"run_dir": str(tmp_path / "x"), "preset": "smoke", "auto_train": True, "epochs": 3, "lr": "0.01",
                 "seed": None, "sigmas": None, "config": config}
    params = record.for_page(namespace, namespace["run_dir"], "train").params
    assert params["epochs"] == 3 and params["lr"] == 0.01 and params["preset"] == "smoke"
    assert params["seed"] == config.PRESETS["smoke"]["seed"]
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].split() == ["value", "from"] and shown[1].split() == ["parameter"]
    rows = {line.split()[0]: line.split()[1:] for line in shown[2:]}
    assert set(rows) == {"epochs", "lr", "seed", "sigmas"}  # only preset parameters the cell declares
    assert rows["epochs"] == ["3", "given"] and rows["lr"] == ["0.01", "given"]
    assert rows["sigmas"] == [config.format_value(config.PRESETS["smoke"]["sigmas"]), "preset", "smoke"]
    assert config.format_value((0.02, 0.05)) == "0.02,0.05" and config.format_value(0.125) == "0.125"
    # a float in full, as the book's commands give it back to -p: 6 significant digits had made 0.00031415926
    # 0.000314159, so the command shown reproduced another run, and the record took the two as the same value
    assert config.format_value(0.00031415926) == "0.00031415926" and config.format_value(1.0) == "1"
    assert float(config.format_value(0.1 + 0.2)) == 0.1 + 0.2
    from clipalign_utils.record import same_value
    assert same_value("lr", 0.00031415926, 0.00031415926) and not same_value("lr", 0.00031415926, 0.000314159)


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    from clipalign_utils.io import atomic_write, write_text

    target = tmp_path / "metrics" / "table.csv"

    def fails(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fails)
    assert not target.exists() and list((tmp_path / "metrics").iterdir()) == []
    seen = []
    atomic_write(target, lambda tmp: seen.append(tmp.name) or tmp.write_text("a,b\n"))
    assert target.read_text() == "a,b\n" and seen == [".table.tmp.csv"]  # the suffix kept for format-picking writers
    assert list((tmp_path / "metrics").iterdir()) == [target]
    write_text(target, "c\n")
    assert target.read_text() == "c\n"


def test_atomic_writes_of_one_file_at_once_do_not_take_each_others_temporary(tmp_path):
    """Two writers of one file at once (a sweep's local jobs both record the sweep): each renames its own
    temporary, so neither fails and the file holds one writer's text whole."""
    from clipalign_utils.io import atomic_write

    target, inside, failed, release = tmp_path / "sweep.json", [], [], threading.Barrier(2)

    def slow(text):
        def write(tmp):
            tmp.write_text(text)
            inside.append(tmp)
            release.wait(10)  # both temporaries written before either renames
        return write

    def writer(text):
        try:
            atomic_write(target, slow(text))
        except OSError as error:
            failed.append(error)

    threads = [threading.Thread(target=writer, args=(text,)) for text in ("one\n", "two\n")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert failed == [] and len(set(inside)) == 2 and target.read_text() in ("one\n", "two\n")
    assert {tmp.name for tmp in inside} == {".sweep.tmp.json"}  # one name in two folders: the same bytes by any writer
    assert list(tmp_path.iterdir()) == [target]
    # torch.save names its archive after the file it writes: a checkpoint saved twice is the same bytes twice
    for folder in ("a", "b"):
        train._atomic_torch_save({"state_dict": {"w": torch.arange(3.0)}}, tmp_path / folder / "epoch_1.pt")
    assert (tmp_path / "a" / "epoch_1.pt").read_bytes() == (tmp_path / "b" / "epoch_1.pt").read_bytes()


_HEAP_PROBE = """
import ctypes
class Info(ctypes.Structure):  # glibc's struct mallinfo2: ten size_t counters
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
import torch
from clipalign_utils import allocator

def mapped_for(mib):
    before = libc.mallinfo2().hblkhd
    block = torch.empty(mib << 20, dtype=torch.uint8)
    return libc.mallinfo2().hblkhd - before

print(mapped_for(48))
print(allocator.keep_freed_memory())
print(mapped_for(48), mapped_for(64))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_kept_freed_memory_serves_large_blocks_from_the_heap(monkeypatch):
    """After keep_freed_memory, a 48 MiB tensor comes from the reusable heap, not from a fresh mmap; a
    64 MiB one is still mapped afresh (heap blocks that large fragment it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _HEAP_PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout
    before, kept, after, larger = out.split()
    assert int(before) >= 48 << 20  # glibc's default: a block this large is mapped afresh, and unmapped on free
    assert kept == "True" and int(after) == 0 and int(larger) >= 64 << 20
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")  # the user's own malloc settings win
    assert allocator._set_thresholds() is False


def test_the_model_factory_door_keeps_freed_memory(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(models, "keep_freed_memory", lambda: calls.append(1))
    model = models.create_model("tiny")
    path = tmp_path / "epoch_1.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    models.load_checkpoint_model(path, "clipalign-tiny")
    assert len(calls) == 2


@pytest.mark.parametrize("scale", ["tiny", "vit-tiny"])
def test_block_pairs_streamed_in_batches_give_the_distances_of_the_whole_outputs(scale, tmp_path):
    from clipalign_utils.metrics.iqa import block_distance, location_distance

    model = models.create_model(scale, image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    test_set = world.make_test_set(1, 0, CFG).images.astype(np.float32) / 255  # floats: the noise stays
    references = ArrayImages(test_set[:3], "references")
    distorted = ArrayImages(np.clip(test_set + 0.1 * np.random.default_rng(0).normal(size=test_set.shape), 0, 1)
                            .astype(np.float32), "distorted")
    # pairs out of order, a distorted image in two pairs and one in none, across batches of 3
    reference_rows, distorted_rows = np.array([2, 0, 1, 0, 2, 1]), np.array([7, 0, 4, 5, 3, 4])
    encoder = Encoder(checkpoint, models.open_clip_name(scale), 32, batch_size=3, cache_dir=tmp_path / "cache")
    blocks = encoder.encode_block_pairs(references, distorted, reference_rows, distorted_rows)
    whole_references, whole_distorted = encoder.encode_layers(references), encoder.encode_layers(distorted)
    assert list(blocks) == list(whole_references)[:-1]  # every block; "final" is the embedding's own
    for name, statistics in blocks.items():
        for kind in ("cosine", "euclidean", "normalized_euclidean"):
            np.testing.assert_allclose(block_distance(statistics, kind), location_distance(
                whole_references[name][reference_rows], whole_distorted[name][distorted_rows], kind), rtol=1e-9)
    # read back from the cache without loading the model; other pairs are another entry
    fresh = Encoder(checkpoint, models.open_clip_name(scale), 32, cache_dir=tmp_path / "cache")
    cached = fresh.encode_block_pairs(references, distorted, reference_rows, distorted_rows)
    assert fresh._model is None
    assert all(np.array_equal(cached[n][k], blocks[n][k]) for n in blocks for k in blocks[n])
    swapped = fresh.encode_block_pairs(references, distorted, reference_rows[::-1], distorted_rows[::-1])
    np.testing.assert_allclose(swapped[name]["squared"], blocks[name]["squared"][::-1], rtol=1e-12)


@pytest.mark.parametrize("scale", ["tiny", "vit-tiny"])
def test_aligned_block_pairs_stream_every_set_together(scale, tmp_path):
    """A 2AFC set's pairs: reference k against candidate k of each other set, batches of 3 over 8 images, equal
    to the whole outputs' distances and to encode_block_pairs' on the rows 0 … 7, whose cache entries they are."""
    from clipalign_utils.metrics.iqa import block_distance, location_distance

    model = models.create_model(scale, image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    test_set = world.make_test_set(1, 0, CFG).images.astype(np.float32) / 255  # floats: noise below 1/255 stays
    rng = np.random.default_rng(0)
    references = ArrayImages(test_set, "references")
    others = [ArrayImages(np.clip(test_set + sigma * rng.normal(size=test_set.shape), 0, 1).astype(np.float32),
                          f"p{k}") for k, sigma in enumerate((0.05, 0.2))]
    assert not np.array_equal(others[0].images, others[1].images)
    encoder = Encoder(checkpoint, models.open_clip_name(scale), 32, batch_size=3, cache_dir=tmp_path / "cache")
    aligned = encoder.encode_aligned_block_pairs(references, others)
    whole = encoder.encode_layers(references)
    assert len(aligned) == 2 and all(list(blocks) == list(whole)[:-1] for blocks in aligned)
    for other, blocks in zip(others, aligned):
        other_whole = encoder.encode_layers(other)
        for name, statistics in blocks.items():
            for kind in ("cosine", "euclidean", "normalized_euclidean"):
                np.testing.assert_allclose(block_distance(statistics, kind),
                                           location_distance(whole[name], other_whole[name], kind), rtol=1e-9)
    fresh = Encoder(checkpoint, models.open_clip_name(scale), 32, cache_dir=tmp_path / "cache")
    rows = np.arange(len(references))
    cached = fresh.encode_block_pairs(references, others[1], rows, rows)
    assert fresh._model is None  # the aligned pairs' cache entries answer the same pairs asked one by one
    assert all(np.array_equal(cached[n][k], aligned[1][n][k]) for n in cached for k in cached[n])
    # pairs not in the cache, asked of an encoder that has read only the block names from it (a 2AFC step after
    # an IQA step with layers=all): the model loads first (a README audit found it used before it was loaded)
    another = ArrayImages(np.clip(test_set + 0.3 * rng.normal(size=test_set.shape), 0, 1).astype(np.float32), "p2")
    late = Encoder(checkpoint, models.open_clip_name(scale), 32, cache_dir=tmp_path / "cache")
    late.block_names()
    assert late._model is None
    distances = block_distance(late.encode_aligned_block_pairs(references, [another])[0][name], "euclidean")
    np.testing.assert_allclose(distances, location_distance(whole[name], late.encode_layers(another)[name],
                                                            "euclidean"), rtol=1e-9)
    with pytest.raises(ValueError, match="references holds 8 images, the sets paired with it \\[3, 8\\]"):
        fresh.encode_aligned_block_pairs(references, [others[0], ArrayImages(test_set[:3], "short")])


def test_a_damaged_cache_file_is_computed_again(smoke_run, tmp_path):
    """An audit truncated the embedding cache's files: every re-run failed with numpy's "EOF: reading array header",
    naming neither the file nor the way out. An unreadable file is removed and its array computed again."""
    run = checkpoints.discover_run(smoke_run)
    images = ArrayImages(world.make_test_set(2, 0, CFG).images, "test")
    first = Encoder(run.checkpoints[-1], run.model_name, 32, batch_size=16, cache_dir=tmp_path).encode_images(images)
    (cached,) = tmp_path.glob("*.npy")
    cached.write_bytes(cached.read_bytes()[:90])
    again = Encoder(run.checkpoints[-1], run.model_name, 32, batch_size=16, cache_dir=tmp_path).encode_images(images)
    np.testing.assert_array_equal(again, first)
    assert np.array_equal(np.load(cached), first)  # kept whole again


def test_what_changes_the_numbers_is_never_answered_from_another_entry(tmp_path, monkeypatch):
    """The embedding cache's key holds everything that changes the arrays: the model's options (open_clip_train's
    --force-quick-gelu …), its input size, the prompt templates, which pairs a block comparison takes; an entry
    cut short is computed again, never read as a (short) array. A mutation audit found each of these could be
    dropped with the fast tests passing: a re-run would then publish the numbers of another model or prompt set."""
    model = models.create_model("tiny", image_size=32)
    checkpoint = tmp_path / "epoch_0.pt"
    torch.save({"epoch": 0, "state_dict": model.state_dict()}, checkpoint)
    name, cache = models.open_clip_name("tiny"), tmp_path / "cache"
    test_set = world.make_test_set(1, 0, CFG).images
    references, distorted = ArrayImages(test_set[:3], "references"), ArrayImages(test_set, "distorted")
    reference_rows, distorted_rows = np.array([0, 1, 2]), np.array([3, 4, 5])
    filled = Encoder(checkpoint, name, 32, batch_size=4, cache_dir=cache)
    embeddings = filled.encode_images(distorted)
    filled.zero_shot_weights(["circle", "square"], ["a photo of a {}."])
    filled.encode_block_pairs(references, distorted, reference_rows, distorted_rows)
    # an entry cut short (a full disk): computed again, and kept whole again
    entry = filled._cache_path({"images": distorted.identity, "layer": "final", "kind": "image"})
    entry.write_bytes(entry.read_bytes()[:90])
    np.testing.assert_array_equal(Encoder(checkpoint, name, 32, cache_dir=cache).encode_images(distorted), embeddings)
    np.testing.assert_array_equal(np.load(entry), embeddings)

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models, "load_checkpoint_model", no_load)
    same = Encoder(checkpoint, name, 32, cache_dir=cache)  # the same key: served without the model
    np.testing.assert_array_equal(same.encode_images(distorted), embeddings)
    same.zero_shot_weights(["circle", "square"], ["a photo of a {}."])
    same.encode_block_pairs(references, distorted, reference_rows, distorted_rows)
    assert same._model is None
    computes = {
        "model options": lambda: Encoder(checkpoint, name, 32, cache_dir=cache, model_options={"force_quick_gelu": True}
                                         ).encode_images(distorted),
        "input size": lambda: Encoder(checkpoint, name, 64, cache_dir=cache).encode_images(distorted),
        "templates": lambda: same.zero_shot_weights(["circle", "square"], ["a drawing of a {}."]),
        "classnames": lambda: same.zero_shot_weights(["circle", "star"], ["a photo of a {}."]),
        "pairs": lambda: same.encode_block_pairs(references, distorted, reference_rows, distorted_rows[::-1]),
        # the other side of a pair: its rows, or the reference set itself (a mutation audit dropped each from the key)
        "reference rows": lambda: same.encode_block_pairs(references, distorted, reference_rows[::-1], distorted_rows),
        "references": lambda: same.encode_block_pairs(ArrayImages(test_set[5:8], "other references"), distorted,
                                                      reference_rows, distorted_rows),
        "package source": lambda: other_source(),
    }

    def other_source():  # the package's code changed (the slow tier checked this alone before)
        from clipalign_utils import encoder as encoder_module

        with monkeypatch.context() as patched:
            patched.setattr(encoder_module, "source_hash", lambda: "other code")
            Encoder(checkpoint, name, 32, cache_dir=cache).encode_images(distorted)
    for what, compute in computes.items():
        with pytest.raises(AssertionError, match="the model was loaded"):
            compute()
            pytest.fail(f"another {what} was answered from the cache")
