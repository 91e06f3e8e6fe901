"""Training resumes after an interruption and ends exactly where an uninterrupted run ends."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from clipalign_utils import config, train
from clipalign_utils.errors import CheckpointError
from helpers import train_interrupted_after


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_interrupted_run_resumes_to_identical_weights(smoke_run, tmp_path, monkeypatch):
    params = config.resolve("smoke")
    run_dir = tmp_path / "run"
    # The process dies while writing the checkpoint after epoch 0.5.
    train_interrupted_after(run_dir, params, 0.5, monkeypatch)
    assert max(float(p.stem.split("_")[1]) for p in (run_dir / "checkpoints").glob("epoch_*.pt")) == 0.5
    train.train(run_dir, params, progress=False)
    final = f"epoch_{params['epochs']}.pt"
    resumed, uninterrupted = _state(run_dir / "checkpoints" / final), _state(smoke_run / "checkpoints" / final)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
    assert (run_dir / "train_log.csv").read_text() == (smoke_run / "train_log.csv").read_text()
    # every checkpoint, bytes too (the resume point rewritten without its optimizer, the later ones with theirs):
    # an audit found the resumed files 4.9 KB and 320 bytes longer, which defeats comparing checksums
    for path in sorted((smoke_run / "checkpoints").iterdir()):
        assert (run_dir / "checkpoints" / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_training_killed_between_its_saves_resumes_to_the_same_files(smoke_run, tmp_path, monkeypatch):
    """Killed after saving epoch 0.5 (with the optimizer) but before rewriting epoch 0.25 without it, with a
    temporary save folder left behind: the resumed run's checkpoints, log and folder are an uninterrupted run's
    (an audit found the log's lines between the two checkpoints lost for good, epoch 0.25 keeping its optimizer
    and the temporary folder kept)."""
    from helpers import TrainingCrash

    params = config.resolve("smoke")
    run_dir = tmp_path / "run"
    real_save = train._atomic_torch_save

    def killed_at_the_rewrite(obj, path):
        if path.name == "epoch_0.25.pt" and "optimizer" not in obj:
            (path.parent / ".epoch_0.25.0123456789ab.tmp").mkdir()
            (path.parent / ".epoch_0.25.0123456789ab.tmp" / ".epoch_0.25.tmp.pt").write_bytes(b"half")
            raise TrainingCrash(path.name)
        real_save(obj, path)
    monkeypatch.setattr(train, "_atomic_torch_save", killed_at_the_rewrite)
    with pytest.raises(TrainingCrash):
        train.train(run_dir, params, progress=False)
    monkeypatch.setattr(train, "_atomic_torch_save", real_save)
    assert "optimizer" in torch.load(run_dir / "checkpoints" / "epoch_0.25.pt", weights_only=True)
    train.train(run_dir, params, progress=False)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == sorted(
        p.name for p in (smoke_run / "checkpoints").iterdir())
    for path in sorted((smoke_run / "checkpoints").iterdir()):
        assert (run_dir / "checkpoints" / path.name).read_bytes() == path.read_bytes(), path.name
    assert (run_dir / "train_log.csv").read_text() == (smoke_run / "train_log.csv").read_text()


@pytest.mark.slow
def test_a_stopped_training_is_not_analysed_as_finished(smoke_run, tmp_path, monkeypatch, capsys):
    """A run whose training stopped (a killed job) is refused by --only's analyses in one line, before anything
    is written, rather than measured with its last checkpoint taken for the final one (an audit found verdicts
    over the partial trajectory, and a later resume skipping the page measured on it); a notebook opened alone
    resumes the training first; with auto_train off it says what to do."""
    from clipalign_utils import checkpoints, cli

    params = config.resolve("smoke")
    run_dir = tmp_path / "run"
    train_interrupted_after(run_dir, params, 0.5, monkeypatch)
    stopped = f"{run_dir}: its training stopped at epoch 0.5 of {params['epochs']} (train_params.json)"
    assert cli.main(["run", "--out", str(run_dir), "--only", "iqa,tradeoff", "--no-book"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error == (f"clipalign: error: {stopped}: an analysis would take it for the final checkpoint; finish the "
                     f"training first (clipalign run --out {run_dir} --only train resumes it)")
    assert not (run_dir / "metrics").exists() and not (run_dir / "record.json").exists()
    with pytest.raises(CheckpointError, match="its training stopped at epoch 0.5"):
        checkpoints.discover_or_train(run_dir, params, auto_train=False)
    run = checkpoints.discover_or_train(run_dir, params, auto_train=True)
    assert f"{stopped}: resuming it there first" in capsys.readouterr().out
    assert sorted(c.path.name for c in run.checkpoints) == sorted(p.name for p in (smoke_run / "checkpoints").iterdir())
    assert torch.equal(_state(run.checkpoints[-1].path)["logit_scale"],
                       _state(smoke_run / "checkpoints" / run.checkpoints[-1].path.name)["logit_scale"])


def test_same_seed_trains_identical_weights(smoke_run, tmp_path):
    train.train(tmp_path / "again", config.resolve("smoke"), progress=False)
    for path in sorted((smoke_run / "checkpoints").glob("epoch_*.pt")):
        a, b = _state(tmp_path / "again" / "checkpoints" / path.name), _state(path)
        assert all(torch.equal(a[k], b[k]) for k in a), path.name


def test_resume_refuses_a_run_with_other_parameters(smoke_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    with pytest.raises(CheckpointError, match="lr: 0.001 -> 0.002"):
        train.train(run_dir, config.resolve("smoke", lr=0.002), progress=False)



def test_only_the_latest_checkpoint_keeps_the_optimizer(smoke_run):
    """Disk: the optimizer state (twice the weights) stays only where resuming needs it."""
    import torch

    from clipalign_utils import checkpoints, models

    run = checkpoints.discover_run(smoke_run)
    states = [torch.load(c.path, map_location="cpu", weights_only=True) for c in run.checkpoints]
    assert ["optimizer" in state for state in states] == [False] * (len(states) - 1) + [True]
    models.load_checkpoint_model(run.checkpoints[0].path, run.model_name, run.image_size)  # still loads


def test_fused_adamw_matches_the_per_tensor_loop_within_rounding():
    # The trainer's fused AdamW (one kernel for every tensor) against torch's reference loop on the
    # default model and batch: after one step the weights agree to rounding. (Over many steps Adam
    # amplifies rounding where a gradient is noise, so runs diverge there; each is reproducible by itself.)
    from clipalign_utils import models
    from clipalign_utils.data.world import make_pairs, training_world
    from open_clip.loss import ClipLoss

    params = config.resolve("default")
    pairs = make_pairs(params["batch_size"], 0, training_world(params))
    images = torch.from_numpy(pairs.images).permute(0, 3, 1, 2).float() / 255
    tokenizer = models.tokenizer_for(models.open_clip_name(params["model"]))
    texts = tokenizer(list(pairs.captions))
    after = []
    for fused in (True, None):
        model = models.create_model(params["model"], image_size=params["image_size"], seed=0, device="cpu")
        optimizer = torch.optim.AdamW(model.parameters(), lr=params["lr"], fused=fused)
        out = model(images, texts)
        ClipLoss()(out["image_features"], out["text_features"], out["logit_scale"]).backward()
        optimizer.step()
        after.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    moved = (after[1] - torch.cat([p.detach().flatten() for p in
                                    models.create_model(params["model"], image_size=params["image_size"], seed=0,
                                                        device="cpu").parameters()])).abs().max()
    assert moved > 1e-4  # the step did move the weights
    assert (after[0] - after[1]).abs().max() < 1e-6


def test_a_batch_of_the_sets_tokens_is_the_batch_tokenized_alone():
    # The trainer tokenizes a set's captions once and takes each batch's rows: the same tokens as before.
    from clipalign_utils import models
    from clipalign_utils.data.world import make_pairs, training_world

    params = config.resolve("smoke")
    captions = make_pairs(200, 0, training_world(params)).captions
    tokenizer = models.tokenizer_for(models.open_clip_name(params["model"]))
    batch = np.random.default_rng(0).permutation(200)[:64]
    assert len(set(captions)) > 10
    tokens = train.tokenize_each_once(tokenizer, captions)  # each distinct caption through the tokenizer once
    assert torch.equal(tokens, tokenizer(captions))
    assert torch.equal(tokens[torch.from_numpy(batch)], tokenizer([captions[i] for i in batch]))


def test_training_the_worlds_token_rows_alone_gives_every_weight_and_moment_of_training_them_all(tmp_path, monkeypatch):
    # The trainer steps only the embedding rows the world's captions can hold; a row no caption holds gets a
    # zero gradient, which AdamW (no weight decay on embeddings) turns into no change. Same run, both ways
    # (a short one: 8 steps).
    params = config.resolve("smoke", epochs=1, samples_per_epoch=512, early_checkpoints=())
    train.train(tmp_path / "rows", params, progress=False)
    with monkeypatch.context() as patch:
        patch.setattr(train.TrainedTokenRows, "applies", staticmethod(lambda model: False))
        train.train(tmp_path / "all", params, progress=False)
    final = f"epoch_{params['epochs']}.pt"
    rows, every = (torch.load(tmp_path / kind / "checkpoints" / final, map_location="cpu", weights_only=True)
                   for kind in ("rows", "all"))
    assert list(rows["state_dict"]) == list(every["state_dict"])  # the checkpoint's format is unchanged
    for name, tensor in every["state_dict"].items():
        assert torch.equal(rows["state_dict"][name], tensor), name
    for index, moments in every["optimizer"]["state"].items():
        for key, value in moments.items():
            assert torch.equal(rows["optimizer"]["state"][index][key], value), (index, key)
    untrained = torch.load(tmp_path / "rows" / "checkpoints" / "epoch_0.pt", weights_only=True)["state_dict"]
    embedding = rows["state_dict"]["token_embedding.weight"]
    moved = (embedding != untrained["token_embedding.weight"]).any(dim=1)
    vocabulary = train.world_vocabulary(models_tokenizer(params))
    assert embedding.shape[0] == 49408 and set(moved.nonzero().flatten().tolist()) <= set(vocabulary.tolist())
    assert moved.sum() >= 10  # the captions' rows did train


def models_tokenizer(params):
    from clipalign_utils import models

    return models.tokenizer_for(models.open_clip_name(params["model"]))


def test_a_checkpoint_rewritten_without_the_optimizer_keeps_the_weights_it_was_saved_with(tmp_path, monkeypatch):
    # The trainer rewrites the previous checkpoint from a copy it kept, not from the file: the copy must be of
    # that step's weights, not of the live ones the steps since have changed.
    first_written, save = {}, train._atomic_torch_save

    def recording(state, path):
        first_written.setdefault(path.name, {k: v.clone() for k, v in state["state_dict"].items()})
        save(state, path)

    monkeypatch.setattr(train, "_atomic_torch_save", recording)
    train.train(tmp_path, config.resolve("smoke", samples_per_epoch=256, epochs=1), progress=False)
    assert len(first_written) >= 4
    for name, weights in first_written.items():
        state = _state(tmp_path / "checkpoints" / name)
        assert state.keys() == weights.keys() and all(torch.equal(state[k], weights[k]) for k in weights), name


# A short run (2 epochs of 4 steps, warmup 2, an early checkpoint at 0.5): its schedule, steps,
# learning rates and optimizer state, its thread count, and a resume from each kind of stop.
def _short():
    return config.resolve("smoke", epochs=2, samples_per_epoch=256, early_checkpoints=(0.5,), warmup=2, device="cpu")


# trained on a count that is neither the default nor 1, so a checkpoint recording either is caught
_THREADS = 2 if torch.get_num_threads() != 2 else 3


@pytest.fixture
def short_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(_THREADS)
    yield _THREADS
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(_THREADS)
    try:
        run_dir = tmp_path_factory.mktemp("short_run")
        train.train(run_dir, _short(), progress=False)
    finally:
        torch.set_num_threads(threads)
    return run_dir


def test_a_short_run_saves_its_schedule_with_its_steps_learning_rates_and_threads(short_run):
    states = {p.name: torch.load(p, map_location="cpu", weights_only=True)
              for p in train._saved_checkpoints(short_run / "checkpoints")}
    assert list(states) == ["epoch_0.pt", "epoch_0.5.pt", "epoch_1.pt", "epoch_2.pt"]
    assert [(s["epoch"], s["step"]) for s in states.values()] == [(0.0, 0), (0.5, 2), (1.0, 4), (2.0, 8)]
    assert ["optimizer" in s for s in states.values()] == [False, False, False, True]
    assert {s["threads"] for s in states.values()} == {_THREADS}
    # open_clip_train's cosine_lr over 8 steps: warmup lr*(step+1)/2, then 0.5*(1+cos(pi*(step-2)/6))*lr
    log = (short_run / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,epoch,loss,lr"
    assert [line.split(",")[:2] for line in log[1:]] == [[str(s), f"{s / 4:.4f}"] for s in range(1, 9)]
    assert [line.split(",")[3] for line in log[1:]] == [
        "0.0005", "0.001", "0.001", "0.000933013", "0.00075", "0.0005", "0.00025", "6.69873e-05"]


@pytest.mark.slow  # three trainings (3.5 s); the fast tier keeps the short run's own checks
def test_a_short_run_stopped_inside_and_at_the_end_of_an_epoch_resumes_to_the_same_files(short_run, short_threads,
                                                                                          tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    train_interrupted_after(run_dir, _short(), 0.5, monkeypatch)  # dies writing epoch_1: resumes at step 2
    assert [p.name for p in train._saved_checkpoints(run_dir / "checkpoints")] == ["epoch_0.pt", "epoch_0.5.pt"]
    train_interrupted_after(run_dir, _short(), 1, monkeypatch)  # dies writing epoch_2: resumes at step 4, epoch 2
    train.train(run_dir, _short(), progress=False)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == sorted(
        p.name for p in (short_run / "checkpoints").iterdir())
    for path in sorted((short_run / "checkpoints").iterdir()):
        assert (run_dir / "checkpoints" / path.name).read_bytes() == path.read_bytes(), path.name
    assert (run_dir / "train_log.csv").read_text() == (short_run / "train_log.csv").read_text()


def test_the_seed_sets_the_initial_weights_and_each_epochs_batch_order(tmp_path, monkeypatch):
    from clipalign_utils import models

    params = config.resolve("smoke", seed=1, epochs=1, samples_per_epoch=128, early_checkpoints=(), device="cpu")
    train_interrupted_after(tmp_path / "run", params, 0, monkeypatch)  # epoch_0.pt alone
    untrained = _state(tmp_path / "run" / "checkpoints" / "epoch_0.pt")
    for seed, same in ((1, True), (0, False)):
        drawn = models.create_model("tiny", image_size=32, seed=seed).state_dict()
        assert all(torch.equal(untrained[k], drawn[k]) for k in drawn) == same, seed
    orders = {(seed, epoch): train.epoch_order({"seed": seed, "samples_per_epoch": 128}, epoch)
              for seed in (0, 1) for epoch in (1, 2)}
    assert all(sorted(order) == list(range(128)) for order in orders.values())
    assert len({tuple(order) for order in orders.values()}) == 4  # another seed or epoch: another order
    assert np.array_equal(train.epoch_order({"seed": 1, "samples_per_epoch": 128}, 2), orders[1, 2])


def test_a_short_run_stopped_inside_its_first_epoch_is_resumed_by_discover_or_train_to_the_same_files(
        short_run, short_threads, tmp_path, monkeypatch, capsys):
    # Fast-tier twin of the slow resume tests (which the fast tier skips, leaving every resume line unrun): the
    # process dies writing epoch_1 (step 4), and a notebook opened alone resumes it from epoch_0.5 (step 2): the
    # token rows' compact AdamW moments reloaded, the steps before 2 skipped, the log's first lines kept and
    # epoch_0.5 rewritten without its optimizer. Every file must be the uninterrupted run's, byte for byte.
    from clipalign_utils import checkpoints

    run_dir = tmp_path / "run"
    train_interrupted_after(run_dir, _short(), 0.5, monkeypatch)
    assert "optimizer" in torch.load(run_dir / "checkpoints" / "epoch_0.5.pt", weights_only=True)
    run = checkpoints.discover_or_train(run_dir, _short(), auto_train=True)
    stopped = "its training stopped at epoch 0.5 of 2 (train_params.json): resuming it there first"
    assert stopped in capsys.readouterr().out
    assert [c.path.name for c in run.checkpoints] == ["epoch_0.pt", "epoch_0.5.pt", "epoch_1.pt", "epoch_2.pt"]
    for path in sorted((short_run / "checkpoints").iterdir()):
        assert (run_dir / "checkpoints" / path.name).read_bytes() == path.read_bytes(), path.name
    assert (run_dir / "train_log.csv").read_text() == (short_run / "train_log.csv").read_text()


def _with_logit_scale(value, monkeypatch):
    from clipalign_utils import models

    create = models.create_model

    def created(*args, **kwargs):
        model = create(*args, **kwargs)
        with torch.no_grad():
            model.logit_scale.fill_(value)
        return model
    monkeypatch.setattr(models, "create_model", created)


def test_each_step_clamps_the_logit_scale_to_ln_100_as_open_clip_train_does(tmp_path, monkeypatch):
    # open_clip_train clamps logit_scale (the log of the inverse temperature) into [0, ln 100] after every
    # optimiser step. A model starting above it (one step of 64 images) ends the step on the bound; without
    # the clamp AdamW moves it by about the learning rate only.
    _with_logit_scale(10.0, monkeypatch)
    params = config.resolve("smoke", epochs=1, samples_per_epoch=64, early_checkpoints=(), device="cpu", bn_batches=1)
    train.train(tmp_path, params, progress=False)
    assert _state(tmp_path / "checkpoints" / "epoch_0.pt")["logit_scale"].item() == 10.0  # saved before the step
    assert _state(tmp_path / "checkpoints" / "epoch_1.pt")["logit_scale"].item() == pytest.approx(np.log(100), abs=1e-6)


def test_resuming_tidies_a_stopped_save_and_drops_the_optimizer_of_the_checkpoint_before_the_latest(tmp_path):
    # A training killed while saving leaves a temporary save folder, and one killed between saving the latest
    # (epoch_0.5) and rewriting the one before (epoch_0) without its optimizer leaves that one holding it: both
    # tidied as an uninterrupted run leaves them, the latest keeping its optimizer (the resume reads it). An
    # unreadable one before the latest is left to the resume point's own check.
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    weights = {"w": torch.arange(3.0)}
    for name, step in (("epoch_0", 0), ("epoch_0.5", 2)):
        torch.save({"epoch": step / 4, "step": step, "state_dict": weights, "optimizer": {"state": {}}},
                   folder / f"{name}.pt")
    stale = folder / ".epoch_1.0123456789ab.tmp"
    stale.mkdir()
    (stale / ".epoch_1.tmp.pt").write_bytes(b"half")
    train._tidy_stopped_saves(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_0.5.pt", "epoch_0.pt"]
    before, latest = (torch.load(folder / f"{n}.pt", weights_only=True) for n in ("epoch_0", "epoch_0.5"))
    assert "optimizer" not in before and torch.equal(before["state_dict"]["w"], weights["w"]) and before["step"] == 0
    assert "optimizer" in latest
    (folder / "epoch_0.pt").write_bytes((folder / "epoch_0.5.pt").read_bytes()[:100])  # cut short
    train._tidy_stopped_saves(folder)  # no error here
    assert len((folder / "epoch_0.pt").read_bytes()) == 100


def test_resuming_from_an_unreadable_latest_checkpoint_names_it(tmp_path):
    # A half-written latest checkpoint: the error names the file and the way out, rather than a torch traceback.
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"step": 0}, folder / "epoch_0.pt")
    torch.save({"step": 2, "state_dict": {"w": torch.zeros(1000)}}, folder / "epoch_0.5.pt")
    (folder / "epoch_0.5.pt").write_bytes((folder / "epoch_0.5.pt").read_bytes()[:2000])  # cut short by a kill
    with pytest.raises(CheckpointError, match=r"checkpoint .*epoch_0\.5\.pt is corrupt \(\w+\); delete it and run "
                                              r"again to resume from the one before"):
        train._resume_point(folder, _short())
    (folder / "epoch_0.5.pt").unlink()
    assert train._resume_point(folder, _short()) == (folder / "epoch_0.pt", 0)


def test_a_caption_token_outside_the_worlds_vocabulary_is_refused():
    # Only the token rows the world's captions can hold are trained: a caption with another token would read a
    # row that is not there (remap -1), so the training set is checked first.
    from clipalign_utils import models
    from clipalign_utils.data.world import CAPTION_TEMPLATES, SHAPES

    model = models.create_model("tiny", image_size=32, seed=0)
    tokenizer = models.tokenizer_for(models.open_clip_name("tiny"))
    rows = train.training_form(model, tokenizer)
    rows.check(tokenizer([CAPTION_TEMPLATES[0].format(SHAPES[0]), CAPTION_TEMPLATES[-1].format(SHAPES[-1])]))
    with pytest.raises(RuntimeError, match="training captions hold tokens outside the world's vocabulary"):
        rows.check(tokenizer([CAPTION_TEMPLATES[0].format("zebra")]))
