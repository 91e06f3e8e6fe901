"""A run's record: parameters resolved once against the run's own training record, contradictions refused,
sources kept, the record.json entries, evaluation-set hashes, and the seeds derived from eval_seed."""
from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest

from clipalign_utils import config, record, results
from clipalign_utils.data.image_sets import ArrayImages
from clipalign_utils.errors import ParameterError
from clipalign_utils.steps.noise import analysis as noise_step


def _trained(run_dir, **values):
    """A run directory whose training record (train_params.json) holds the smoke preset's values and ``values``."""
    params = config.resolve("smoke", **values)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train_params.json").write_text(json.dumps({k: record.jsonable(params[k]) for k in record.TRAINING_KEYS}))
    return run_dir


def test_the_run_record_wins_over_the_preset_and_says_so(tmp_path):
    run = _trained(tmp_path / "run", seed=1, texture_correlation=1.0, texture_scale=2.0)
    resolved = record.resolve(run, "smoke", {"distance": "cosine"})
    assert resolved.values["seed"] == 1 and resolved.values["texture_scale"] == 2.0
    assert resolved.world == record.WorldSettings(32, 1.0, 2.0, "varied", 0.0, config.PRESETS["smoke"]["quality_families"])
    assert resolved.training.seed == 1 and resolved.training.epochs == config.PRESETS["smoke"]["epochs"]
    assert resolved.sources["seed"] == "train_params.json" and resolved.sources["distance"] == "given"
    assert resolved.sources["n_boot"] == "preset smoke"
    # The default preset's analysis values, the run's training values: a re-run scores the run's own world.
    other = record.resolve(run, "default", {})
    assert other.values["texture_correlation"] == 1.0 and other.values["n_boot"] == 1000
    with pytest.raises(TypeError):
        resolved.values["seed"] = 2  # frozen


@pytest.mark.parametrize("given, message", [
    ({"seed": "5"}, "-p seed=5 contradicts {run}/train_params.json, which records seed=0"),
    ({"texture_scale": 2}, "which records texture_scale=1"),
    ({"image_size": 64}, "which records image_size=32"),
    ({"model": "small"}, "which records model=tiny"),
    ({"batch_size": 16}, "which records batch_size=64: a trained run keeps its training settings (leave -p batch_size "
                         "out, or train another run into a new folder; the analysis steps' batch size is -p "
                         "eval_batch_size)"),
])
def test_a_training_parameter_that_contradicts_the_record_is_refused(tmp_path, given, message):
    run = _trained(tmp_path / "run")
    with pytest.raises(ParameterError) as error:
        record.resolve(run, "smoke", given)
    assert message.format(run=run) in str(error.value) and "\n" not in str(error.value)
    # The same values are fine; so is any analysis value.
    same = {"seed": 0, "texture_scale": 1.0, "image_size": 32, "model": "clipalign-tiny"}
    assert record.resolve(run, "smoke", {**same, "sigmas": "0.1,0.2"}).values["sigmas"] == (0.1, 0.2)


def test_open_clip_train_runs_record_model_seed_and_size_in_params_txt(tmp_path):
    run = tmp_path / "oc"
    run.mkdir()
    (run / "params.txt").write_text("batch_size: 128\nforce_image_size: [48]\nmodel: ViT-B-32\nseed: 3\n")
    resolved = record.resolve(run, "default", {})
    assert (resolved.values["model"], resolved.values["seed"], resolved.values["image_size"]) == ("ViT-B-32", 3, 48)
    assert resolved.sources["model"] == "params.txt" and resolved.sources["epochs"] == "preset default"
    with pytest.raises(ParameterError, match="records model=ViT-B-32"):
        record.resolve(run, "default", {"model": "ViT-B-16"})
    assert results.run_identity(run) == {"scale": "ViT-B-32", "seed": 3}
    # A folder of checkpoints with no record at all: every value from the preset or the caller.
    bare = tmp_path / "bare"
    bare.mkdir()
    resolved = record.resolve(bare, "default", {"model": "ViT-B-32"})
    assert resolved.sources["model"] == "given" and resolved.unless_preset("image_size") is None
    assert resolved.unless_preset("model") == "ViT-B-32"


def test_record_json_keeps_each_steps_entry_and_a_page_uses_it_as_passed(tmp_path, capsys):
    run = _trained(tmp_path / "run", seed=2)
    resolved = record.resolve(run, "smoke", {"distance": "euclidean"})
    record.write_entry(run, "iqa", resolved)
    saved = json.loads((run / "record.json").read_text())
    assert saved["preset"] == "smoke" and saved["steps"]["iqa"]["parameters"]["distance"] == "euclidean"
    assert record.entry(run, "iqa") == resolved
    assert record.run_preset(run) == "smoke" and record.run_preset(run, "default") == "default"
    # A page given exactly the recorded values (what the pipeline passes) takes the entry, sources and all.
    namespace = {"run_dir": str(run), "preset": "smoke", **saved["steps"]["iqa"]["parameters"]}
    assert record.for_page(namespace, run, "iqa", show=False) is not None
    assert record.for_page(namespace, run, "iqa", show=False).sources == resolved.sources
    # By hand with another value: resolved anew against the run's record.
    by_hand = record.for_page({"run_dir": str(run), "preset": None, "distance": "cosine", "seed": None},
                              run, "iqa", show=False)
    assert by_hand.values["distance"] == "cosine" and by_hand.values["seed"] == 2 and by_hand.preset == "smoke"
    record.restore(run, None)
    assert not (run / "record.json").exists()


def test_a_given_value_the_record_holds_keeps_the_records_form_and_source_and_none_is_not_given(tmp_path):
    """-p seed=1 on a run trained with seed 1 is no contradiction, and no override either: the value and its source
    stay the training record's (model 'tiny', as the record names it, not open_clip's 'clipalign-tiny'), so the
    step's entry does not carry it as given. A None value (a parameters cell left unset) is not given at all."""
    run = _trained(tmp_path / "run", seed=1)
    resolved = record.resolve(run, "smoke", {"seed": "1", "model": "clipalign-tiny", "epochs": None, "distance": None})
    assert (resolved.values["model"], resolved.sources["model"]) == ("tiny", "train_params.json")
    assert (resolved.values["seed"], resolved.sources["seed"]) == (1, "train_params.json")
    assert (resolved.values["epochs"], resolved.sources["epochs"]) == (2, "train_params.json")
    assert resolved.sources["distance"] == "preset smoke" and resolved.given() == {}
    with pytest.raises(ParameterError, match=r"^unknown parameters distnace, sigma; known: alignment_weight, "):
        record.resolve(run, "smoke", {"sigma": 0.1, "distnace": "cosine"})


def test_given_is_what_was_given_now_not_what_was_carried_or_recorded(tmp_path):
    """A step's page passes ``given()`` on as the step's -p values (step_page → measure_step): a carried, recorded
    or preset value passed as given would be recorded as given, and carried into every later re-run."""
    run = _trained(tmp_path / "run", seed=1)
    record.write_entry(run, "iqa", record.resolve(run, "smoke", {"prompt_templates": "single"}))
    resolved = record.for_step(run, "iqa", record.resolve(run, "smoke", {"distance": "cosine", "seed": 1}))
    assert (resolved.values["prompt_templates"], resolved.sources["prompt_templates"]) == ("single", "record.json")
    assert resolved.sources["seed"] == "train_params.json" and resolved.sources["n_boot"] == "preset smoke"
    assert resolved.given() == {"distance": "cosine"}


def test_a_page_takes_the_records_entry_only_for_exactly_its_values_under_its_preset(tmp_path):
    """for_page's shortcut (the CLI passed the entry's values) must not swallow a value changed by hand, a value
    left unset, or another preset: each is resolved anew."""
    run = _trained(tmp_path / "run")
    recorded = record.resolve(run, "smoke", {"distance": "euclidean", "n_boot": 5})
    record.write_entry(run, "iqa", recorded)
    cell = {"run_dir": str(run), "preset": "smoke", "distance": "euclidean", "n_boot": 5}
    assert record.for_page(cell, run, "iqa", show=False) == recorded
    changed = record.for_page({**cell, "n_boot": 7}, run, "iqa", show=False)  # one of two values changed
    assert (changed.values["distance"], changed.values["n_boot"], changed.sources["n_boot"]) == (
        "euclidean", 7, "given")
    unset = record.for_page({**cell, "n_boot": None}, run, "iqa", show=False)  # left unset: carried from the entry
    assert (unset.values["n_boot"], unset.sources["n_boot"], unset.sources["distance"]) == (5, "record.json", "given")
    other = record.for_page({**cell, "preset": "default"}, run, "iqa", show=False)  # the same values, another preset
    assert other.preset == "default" and other.values["iqa_levels"] == (1, 2, 3, 4, 5)
    assert recorded.values["iqa_levels"] == (1, 3, 5)


def test_a_folder_without_a_training_record_carries_analysis_values_but_never_training_ones(tmp_path):
    """Only analysis parameters are carried into a re-run: a model given once for a folder of checkpoints with no
    record is not made its model (the next command's discover_run reads the checkpoints again)."""
    bare = tmp_path / "bare"
    bare.mkdir()
    record.write_entry(bare, "iqa", record.resolve(bare, "smoke", {"model": "ViT-B-32", "distance": "cosine"}))
    again = record.for_step(bare, "iqa", record.resolve(bare, "smoke", {}))
    assert (again.values["distance"], again.sources["distance"]) == ("cosine", "record.json")
    assert (again.values["model"], again.sources["model"]) == ("tiny", "preset smoke")
    assert again.unless_preset("model") is None


def test_a_runs_preset_is_the_first_its_record_json_recorded_and_an_empty_one_is_refused(tmp_path):
    """record.json keeps the preset of its first entry (a page run by hand with another preset adds its entry,
    not its preset); record.json's preset comes before the training's; an empty preset is no preset."""
    run = _trained(tmp_path / "run")
    record.write_entry(run, "iqa", record.resolve(run, "smoke", {}))
    record.write_entry(run, "noise", record.resolve(run, "default", {}))
    saved = record.read(run)
    assert (saved["preset"], saved["steps"]["noise"]["preset"]) == ("smoke", "default")
    params = json.loads((run / "train_params.json").read_text())
    (run / "train_params.json").write_text(json.dumps({**params, "preset": "default"}))
    assert record.recorded_preset(run) == "smoke" and record.run_preset(run) == "smoke"
    with pytest.raises(ParameterError, match="unknown preset ''"):
        record.run_preset(run, "")


def test_a_page_on_a_real_dataset_does_not_list_its_embedded_sets_parameters(tmp_path, monkeypatch):
    """An audit read "reference_observer haarpsi" on a TID2013 page, whose ground truth is people's MOS."""
    from clipalign_utils import prose

    shown = []
    monkeypatch.setattr(prose, "show", lambda obj, text: shown.append(text))
    run = _trained(tmp_path / "run", seed=0)
    cell = {"run_dir": str(run), "preset": "smoke", "iqa_dataset": "tid2013", "iqa_root": "/data/tid2013",
            "iqa_levels": None, "reference_observer": None, "distance": None}
    record.for_page(cell, run, "iqa")
    table, said = shown
    assert "iqa_dataset" in table and "distance" in table
    assert "reference_observer" not in table and "iqa_levels" not in table
    assert said == "not read with iqa_dataset=tid2013 (read with the embedded set only): iqa_levels, reference_observer"
    shown.clear()
    record.for_page({**cell, "iqa_dataset": "embedded", "iqa_root": ""}, run, "iqa")
    assert len(shown) == 1 and "reference_observer" in shown[0] and "iqa_levels" in shown[0]


def test_a_steps_checks_read_the_dataset_its_record_carries(tmp_path):
    """A step re-run keeps the dataset it read last; its checks of values taken together must see that dataset,
    not the preset's (an audit: `--only shape -p shape_classifier=imagenet` on a run whose shape step read
    Geirhos was refused as if it read the embedded set; `-p iqa_root=` likewise on a KADID-10k run)."""
    run = _trained(tmp_path / "run", seed=0)
    with pytest.raises(ParameterError, match="cue_conflict_dataset='embedded' has other classes"):
        record.resolve(run, "smoke", {"shape_classifier": "imagenet"})  # no record yet: the preset's set
    with pytest.raises(ParameterError, match="iqa_root=/k is read only by a real dataset"):
        record.resolve(run, "smoke", {"iqa_root": "/k"})
    for step, given in (("shape", {"cue_conflict_dataset": "geirhos", "cue_conflict_root": str(tmp_path)}),
                        ("iqa", {"iqa_dataset": "kadid10k", "iqa_root": str(tmp_path)})):
        record.write_entry(run, step, record.resolve(run, "smoke", given))
    resolved = record.resolve(run, "smoke", {"shape_classifier": "imagenet", "iqa_root": str(tmp_path / "copy")})
    shape = record.for_step(run, "shape", resolved)
    assert (shape.values["cue_conflict_dataset"], shape.values["shape_classifier"]) == ("geirhos", "imagenet")
    assert record.for_step(run, "iqa", resolved).values["iqa_dataset"] == "kadid10k"
    # given now, another dataset's choice is checked against what is given
    with pytest.raises(ParameterError, match="cue_conflict_dataset='embedded' has other classes"):
        record.resolve(run, "smoke", {"shape_classifier": "imagenet", "cue_conflict_dataset": "embedded"})


def test_a_folders_synthesis_reads_the_distance_its_runs_iqa_ran_with(tmp_path):
    """A step's page re-run by hand (papermill) on a folder of runs re-measures each run without the folder's
    own record: the folder's synthesis takes the distance from its runs' iqa entries, as a run's does from its
    own (an audit found it refused with the folder's old value); runs that disagree are named."""
    folder = tmp_path / "runs"
    runs = [_trained(folder / f"tiny-seed{k}", seed=k) for k in (0, 1)]
    for run in runs:
        record.write_entry(run, "iqa", record.resolve(run, "smoke", {"distance": "euclidean"}))
    synthesis = record.for_step(folder, "tradeoff", record.resolve(folder, "smoke", {}))
    assert synthesis.values["distance"] == "euclidean" and synthesis.sources["distance"] == "record.json"
    record.write_entry(runs[1], "iqa", record.resolve(runs[1], "smoke", {"distance": "cosine"}))
    with pytest.raises(ParameterError, match=r"steps tiny-seed0's iqa and tiny-seed1's iqa ran with "
                                             r"distance='euclidean' and 'cosine': give -p distance=… to both"):
        record.for_step(folder, "tradeoff", record.resolve(folder, "smoke", {}))


def test_a_rerun_step_keeps_what_it_was_given_but_not_the_machines_settings(tmp_path):
    """A step re-run without -p measures what it measured last time (a streamed run's TID2013 stays TID2013),
    a value given now wins, the device and batch size are never inherited, and only that step's entry counts."""
    run = _trained(tmp_path / "run")
    tid = tmp_path / "tid2013"
    tid.mkdir()
    first = {"iqa_dataset": "tid2013", "iqa_root": str(tid), "distance": "euclidean", "prompt_templates": "single",
             "device": "cuda", "eval_batch_size": 7}
    record.write_entry(run, "iqa", record.resolve(run, "smoke", first))
    again = record.for_step(run, "iqa", record.resolve(run, "smoke", {}))
    kept = {name: again.values[name] for name in ("iqa_dataset", "iqa_root", "distance", "prompt_templates")}
    assert kept == {"iqa_dataset": "tid2013", "iqa_root": str(tid), "distance": "euclidean", "prompt_templates": "single"}
    assert {again.sources[name] for name in kept} == {"record.json"}
    smoke = config.PRESETS["smoke"]
    assert (again.values["device"], again.values["eval_batch_size"]) == (smoke["device"], smoke["eval_batch_size"])
    assert again.sources["seed"] == "train_params.json" and again.sources["n_boot"] == "preset smoke"
    # Carried once, carried again: the entry written by the re-run keeps them for the next one.
    record.write_entry(run, "iqa", again)
    assert record.for_step(run, "iqa", record.resolve(run, "smoke", {})).values["iqa_dataset"] == "tid2013"
    # A value given now wins; another step's entry is not this step's.
    assert record.for_step(run, "iqa", record.resolve(run, "smoke", {"distance": "cosine"})).values["distance"] == "cosine"
    assert record.for_step(run, "similarity", record.resolve(run, "smoke", {})).values["distance"] == smoke["distance"]
    # The dataset's folder gone: one line naming the record, the parameter and the way out ...
    tid.rmdir()
    with pytest.raises(ParameterError) as error:
        record.for_step(run, "iqa", record.resolve(run, "smoke", {}))
    assert str(error.value) == (f"{run / 'record.json'}: step iqa last read iqa_root={tid}, which no longer exists: "
                                f"give -p iqa_root=<the dataset's folder> (or -p iqa_dataset=embedded)")
    # ... which works: the embedded set needs no folder.
    back = record.for_step(run, "iqa", record.resolve(run, "smoke", {"iqa_dataset": "embedded"}))
    assert back.values["iqa_dataset"] == "embedded" and back.values["distance"] == "euclidean"



def test_a_split_given_for_one_dataset_is_not_carried_to_another(tmp_path):
    """similarity_split and _protocol describe the dataset they were given for (dataset_options): a re-run
    given another dataset reads that one's defaults; a re-run on the same dataset keeps them."""
    run = _trained(tmp_path / "run")
    bapps, nights = tmp_path / "bapps", tmp_path / "nights"
    bapps.mkdir(), nights.mkdir()
    record.write_entry(run, "similarity", record.resolve(run, "smoke", {
        "similarity_dataset": "bapps", "similarity_root": str(bapps), "similarity_split": "train",
        "distance": "euclidean"}))
    same = record.for_step(run, "similarity", record.resolve(run, "smoke", {}))
    assert (same.values["similarity_dataset"], same.values["similarity_split"]) == ("bapps", "train")
    given_again = record.for_step(run, "similarity", record.resolve(run, "smoke", {"similarity_dataset": "bapps"}))
    assert given_again.values["similarity_split"] == "train"
    other = record.for_step(run, "similarity", record.resolve(run, "smoke", {
        "similarity_dataset": "nights", "similarity_root": str(nights)}))
    assert (other.values["similarity_split"], other.sources["similarity_split"]) == ("", "preset smoke")
    assert other.values["similarity_root"] == str(nights)
    assert other.values["distance"] == "euclidean"  # not bound to the dataset: carried as before
    # The embedded set, given without a root: the BAPPS folder is not carried either.
    embedded = record.for_step(run, "similarity", record.resolve(run, "smoke", {"similarity_dataset": "embedded"}))
    assert (embedded.values["similarity_root"], embedded.values["similarity_split"]) == ("", "")


def test_a_step_reads_a_table_at_the_value_the_step_that_wrote_it_ran_with(tmp_path):
    """distance is a column of iqa.csv: interpolation and the synthesis, which read that table, take the
    distance the iqa step last ran with (before their own entries, after what is given now)."""
    run = _trained(tmp_path / "run")
    preset = config.PRESETS["smoke"]["distance"]
    record.write_entry(run, "iqa", record.resolve(run, "smoke", {"distance": "euclidean", "n_boot": 5}))
    for step in ("interpolation", "tradeoff"):
        taken = record.for_step(run, step, record.resolve(run, "smoke", {}), ("distance", "n_boot"))
        assert (taken.values["distance"], taken.sources["distance"]) == ("euclidean", "record.json"), step
        assert taken.sources["n_boot"] == "preset smoke", step  # not a column: iqa's own setting
    given = record.for_step(run, "interpolation", record.resolve(run, "smoke", {"distance": "cosine"}), ("distance",))
    assert given.values["distance"] == "cosine"
    # The step's own entry said euclidean; iqa has since run at the preset's distance: iqa's table wins.
    record.write_entry(run, "interpolation", record.resolve(run, "smoke", {"distance": "euclidean"}))
    record.write_entry(run, "iqa", record.resolve(run, "smoke", {}))
    again = record.for_step(run, "interpolation", record.resolve(run, "smoke", {}), ("distance",))
    assert (again.values["distance"], again.sources["distance"]) == (preset, "preset smoke")
    # A page that does not declare the parameter is not given it; a step with no dependency's entry keeps its own.
    assert record.for_step(run, "interpolation", record.resolve(run, "smoke", {}), ("alphas",)).values["distance"] == preset
    (run / "record.json").unlink()
    record.write_entry(run, "interpolation", record.resolve(run, "smoke", {"distance": "euclidean"}))
    assert record.for_step(run, "interpolation", record.resolve(run, "smoke", {}), ("distance",)).values["distance"] == "euclidean"


def test_a_step_records_the_hashes_of_what_it_loaded(tmp_path):
    run_dir = _trained(tmp_path / "run")
    run = types.SimpleNamespace(run_dir=run_dir, image_size=32)
    record.write_entry(run_dir, "noise", record.resolve(run_dir, "smoke", {}))
    data = noise_step.load(run, record.resolve(run_dir, "smoke", {}).params)
    hashes = json.loads((run_dir / "record.json").read_text())["steps"]["noise"]["eval_sets"]
    assert hashes == record.fingerprints(data) and {"all", "embedded-sigma0"} <= set(hashes)
    assert len(hashes["all"]) == 64


def test_eval_seed_alone_draws_the_evaluation_sets(tmp_path):
    # Every step's sets load from parameters without the training seed (so they cannot depend on it: what
    # lets data/cache.py share a set between a command's seeds) and without what only the measurement reads
    # (a re-run with another distance, or with every layer, reads its sets again), and another eval_seed draws other sets.
    from clipalign_utils.data.cache import NOT_IN_KEY
    from clipalign_utils.orchestration.measure import step_module

    assert set(NOT_IN_KEY) == {"seed", "distance", "layers", "n_boot", "device", "eval_batch_size"}
    run = types.SimpleNamespace(run_dir=None, image_size=32)
    # One IQA level (the same keys, a third of the pairs the observer scores): the sets are drawn uncached here.
    without_seed = {k: v for k, v in config.resolve("smoke", iqa_levels=(1,)).items() if k not in NOT_IN_KEY}
    for step in ("iqa", "shape", "noise", "similarity", "saliency"):
        data = step_module(step).load.__wrapped__(run, without_seed)
        if step in ("iqa", "noise"):
            other = step_module(step).load.__wrapped__(run, config.resolve("smoke", eval_seed=1, iqa_levels=(1,)))
            assert record.fingerprints(data)["all"] != record.fingerprints(other)["all"], step


def test_fingerprints_hash_content_not_names_or_order_of_keys():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    a = record.fingerprints({"x": ArrayImages(images, "set"), "labels": np.array([0, 1])})
    b = record.fingerprints({"x": ArrayImages(images.copy(), "set"), "labels": np.array([0, 1])})
    c = record.fingerprints({"x": ArrayImages(images[::-1].copy(), "set"), "labels": np.array([0, 1])})
    d = record.fingerprints({"x": ArrayImages(images, "set"), "labels": pd.Series([1, 0]).to_numpy()})
    assert a == b and a["set"] != c["set"] and a["all"] != d["all"] and a["set"] == d["set"]


def test_derived_seeds_are_separate_streams_of_eval_seed():
    params = {"eval_seed": 0}
    assert config.derived_seed(params, "noise") != config.bootstrap_seed(params)
    assert config.bootstrap_seed(params) == config.bootstrap_seed({"eval_seed": 0})
    assert config.bootstrap_seed({"eval_seed": 1}) != config.bootstrap_seed(params)
    # the training seed drives none of them: every run of a multi-run folder resamples alike
    for stream in ("bootstrap", "noise"):
        assert (config.derived_seed(config.resolve("smoke", seed=3), stream)
                == config.derived_seed(config.resolve("smoke"), stream)
                != config.derived_seed(config.resolve("smoke", seed=3, eval_seed=1), stream)), stream
    with pytest.raises(ParameterError, match="eval_seed must be >= 0"):
        config.resolve("smoke", eval_seed=-1)


def test_checkpoint_table_needs_the_distance_when_iqa_holds_several(tmp_path):
    names, epochs = ["epoch_0", "epoch_1"], [0.0, 1.0]
    tables = {"iqa": pd.DataFrame({"checkpoint": names * 2, "epoch": epochs * 2, "dataset": "embedded",
                                   "distance": ["euclidean"] * 2 + ["cosine"] * 2, "distortion": "all",
                                   "srcc": [0.1, 0.2, 0.3, 0.4], "srcc_lo": 0.0, "srcc_hi": 0.5}),
              "shape_bias": pd.DataFrame({"checkpoint": names, "epoch": epochs, "dataset": "embedded",
                                          "shape_bias": 0.5, "lo": 0.4, "hi": 0.6}),
              "noise": pd.DataFrame({"checkpoint": names * 2, "epoch": epochs * 2, "dataset": "embedded",
                                     "sigma": [0.0, 0.0, 0.1, 0.1], "accuracy": 0.8, "lo": 0.7, "hi": 0.9,
                                     "normalized_drop": [0.0, 0.0, 0.2, 0.2]})}
    (tmp_path / "metrics").mkdir()
    for name, table in tables.items():
        table.to_csv(tmp_path / "metrics" / f"{name}.csv", index=False)
    with pytest.raises(ParameterError, match="pass distance: .*iqa.csv holds euclidean, cosine"):
        results.checkpoint_table(tmp_path)  # not the alphabetically first one
    assert results.checkpoint_table(tmp_path, "cosine")["iqa_srcc"].tolist() == [0.3, 0.4]
    with pytest.raises(ParameterError) as error:
        results.checkpoint_table(tmp_path, "normalized_euclidean")
    assert str(error.value) == (f"distance='normalized_euclidean': {tmp_path / 'metrics' / 'iqa.csv'} holds euclidean, "
                                f"cosine (give -p distance=euclidean, or run --only iqa -p "
                                f"distance=normalized_euclidean first)")


@pytest.mark.slow
def test_a_rerun_step_scores_the_runs_own_world_and_refuses_another_seed(tmp_path, capsys):
    from clipalign_utils import cli, train
    from clipalign_utils.orchestration import measure

    world = {"texture_correlation": 1.0, "texture_scale": 2.0}
    run_dir = tmp_path / "run"
    train.train(run_dir, config.resolve("smoke", **world), progress=False)
    # The tables as the library measures them when told the world ...
    for step in ("noise", "iqa"):
        measure.measure_step(run_dir, step, "smoke", world)
    first = {name: (run_dir / "metrics" / f"{name}.csv").read_bytes() for name in ("noise", "iqa")}
    # ... and as `clipalign run --only STEP` rewrites them without being told: the run's record says it.
    for step in ("noise", "iqa"):
        assert cli.main(["run", "--out", str(run_dir), "--only", step]) == 0
        assert (run_dir / "metrics" / f"{step}.csv").read_bytes() == first[step]
    saved = json.loads((run_dir / "record.json").read_text())
    assert saved["preset"] == "smoke"  # recorded by the first measurement: --preset was not needed
    assert saved["steps"]["noise"]["sources"]["texture_scale"] == "train_params.json"
    executed = json.loads((run_dir / "notebooks" / "04_noise_robustness.ipynb").read_text())
    passed = executed["metadata"]["papermill"]["parameters"]
    assert passed["texture_scale"] == 2.0 and passed["seed"] == 0 and passed["preset"] == "smoke"
    capsys.readouterr()
    tables = {p.name: p.read_bytes() for p in (run_dir / "metrics").iterdir()}
    assert cli.main(["run", "--out", str(run_dir), "--only", "noise", "-p", "seed=5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "-p seed=5 contradicts" in err[0] and "records seed=0" in err[0]
    assert {p.name: p.read_bytes() for p in (run_dir / "metrics").iterdir()} == tables


def test_a_generated_set_is_drawn_once_per_key_and_real_datasets_always_load(tmp_path, monkeypatch):
    from clipalign_utils.data import cache

    monkeypatch.setenv("CLIPALIGN_CACHE_DIR", str(tmp_path / "cache"))
    run = types.SimpleNamespace(run_dir=tmp_path / "run", image_size=32)
    calls = []

    def load(value):
        calls.append(value)
        return {"images": np.arange(4) * value}

    params = {"seed": 0, "eval_seed": 0, "noise_dataset": "embedded", "sigmas": (0.1,)}
    first = cache.cached("noise", run, params, lambda: load(1))
    again = cache.cached("noise", run, {**params, "seed": 5}, lambda: load(2))  # another training seed: shared
    assert calls == [1] and np.array_equal(again["images"], first["images"])
    cache.cached("noise", run, {**params, "eval_seed": 1}, lambda: load(3))  # another evaluation seed: drawn
    cache.cached("noise", run, {**params, "noise_dataset": "cifar100"}, lambda: load(4))  # a real set: loaded
    cache.cached("noise", run, {**params, "noise_dataset": "cifar100"}, lambda: load(5))
    cache.cached("noise", run, params, lambda: load(6))
    assert calls == [1, 3, 4, 5]
    assert len(list((tmp_path / "cache" / "evaluation").glob("noise-*.pkl"))) == 2
    monkeypatch.setattr(cache, "source_hash", lambda: "other code")  # the package changed: drawn again
    cache.cached("noise", run, params, lambda: load(7))
    assert calls[-1] == 7
    cache.cached("noise", run, params, lambda: load(8))
    assert calls[-1] == 7
    # a library that draws the sets was upgraded (Pillow's JPEG encoder, say): drawn again
    assert set(cache.library_versions()) == {"numpy", "pillow", "scipy", "scikit-image", "piq", "torch"}
    upgraded = {**cache.library_versions(), "pillow": "99.0"}
    monkeypatch.setattr(cache, "library_versions", lambda: upgraded)
    cache.cached("noise", run, params, lambda: load(9))
    assert calls[-1] == 9
    cache.prune(tmp_path / "cache" / "evaluation", limit_gb=0)  # over the limit: only the newest stays
    assert len(list((tmp_path / "cache" / "evaluation").glob("*.pkl"))) == 1


def test_the_set_cache_evicts_the_least_recently_read_and_redraws_a_damaged_file(tmp_path, monkeypatch):
    """The evaluation-set cache: a set read is used again (its file the last to go, not the oldest written); a file
    that does not unpickle (cut short, damaged) is drawn again and replaced rather than failing the step; a step
    naming a real dataset beside embedded ones always loads. A mutation audit found each of these untested."""
    import os

    from clipalign_utils.data import cache

    monkeypatch.setenv("CLIPALIGN_CACHE_DIR", str(tmp_path / "cache"))
    run = types.SimpleNamespace(run_dir=tmp_path / "run", image_size=32)
    calls = []
    params = {"seed": 0, "eval_seed": 0, "noise_dataset": "embedded"}
    first = {**params, "eval_seed": 1}
    cache.cached("noise", run, first, lambda: calls.append(1) or {"images": np.arange(3)})
    cache.cached("noise", run, params, lambda: calls.append(2) or {"images": np.arange(4)})
    folder = tmp_path / "cache" / "evaluation"
    (older,), (newer,) = ([p for p in folder.glob("*.pkl") if cache.key("noise", q, 32)[:32] in p.name]
                          for q in (first, params))
    os.utime(older, (1_000, 1_000))
    os.utime(newer, (2_000, 2_000))
    assert cache.cached("noise", run, first, lambda: calls.append(3))["images"].tolist() == [0, 1, 2]  # read
    cache.prune(folder, limit_gb=0)  # room for one: the one read last stays
    assert calls == [1, 2] and list(folder.glob("*.pkl")) == [older]

    older.write_bytes(older.read_bytes()[:20])  # damaged: drawn again, and kept whole again
    assert cache.cached("noise", run, first, lambda: calls.append(4) or {"images": np.arange(5)})["images"].size == 5
    assert cache.cached("noise", run, first, lambda: calls.append(5))["images"].size == 5 and calls == [1, 2, 4]

    mixed = {**params, "iqa_dataset": "embedded", "twoafc_dataset": "nights"}  # one real dataset: loaded each time
    cache.cached("noise", run, mixed, lambda: calls.append(6) or {})
    cache.cached("noise", run, mixed, lambda: calls.append(7) or {})
    assert calls[-2:] == [6, 7]


def test_the_package_source_hash_covers_the_model_configs(tmp_path):
    """A model config registered with open_clip, edited in place, changes the embeddings: it is part of the
    source hash that keys both caches (checked in the slow tier only before; a mutation audit)."""
    from pathlib import Path

    from clipalign_utils.data import cache

    package = Path(cache.__file__).resolve().parents[1]
    files = cache.source_files(package)
    assert package / "model_configs" / "clipalign-tiny.json" in files
    assert package / "encoder.py" in files and package / "data" / "cache.py" in files


def test_a_table_is_read_only_as_its_step_wrote_it(tmp_path):
    """An audit truncated iqa.csv: the synthesis read what was left (three checkpoints' rows of six) and the book
    built on it. A step's entry records the sha256 of each table it wrote; another step reading the table checks
    it; the step itself, re-running, may read its last tables; a table no entry vouches for is read as it is."""
    import hashlib

    from clipalign_utils import io
    from clipalign_utils.registry import table as registered

    run = _trained(tmp_path / "run")
    iqa = pd.DataFrame({column: [0.5, 0.4] for column in registered("iqa").columns}).assign(
        checkpoint=["epoch_0", "epoch_1"], distortion="all", dataset="embedded", distance="cosine")
    record.stage_entry(run, "iqa", record.resolve(run, "smoke", {}))
    io.write_tables({"iqa": iqa}, run)
    written = json.loads((run / "record.json").read_text())["steps"]["iqa"]["tables_written"]
    path = run / "metrics" / "iqa.csv"
    assert written == {"metrics/iqa.csv": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert len(results.read_metric(run, "iqa")) == 2
    path.write_bytes(path.read_bytes()[:-20])  # damaged: its last row cut short
    with pytest.raises(ParameterError, match=r"iqa.csv is not the table the iqa step wrote \(changed or damaged "
                                             r"since\): run the step again \(clipalign run --out .* --only iqa\)"):
        results.read_metric(run, "iqa")
    record.stage_entry(run, "iqa", record.resolve(run, "smoke", {}))  # the iqa step running again reads it
    assert len(results.read_metric(run, "iqa")) == 2
    record.discard_staged()
    (run / "record.json").unlink()  # no entry vouches for it: read as it is; an empty file named, with its step
    path.write_bytes(b"")
    with pytest.raises(ParameterError, match=r"iqa.csv cannot be read as a table \(EmptyDataError: .*\): run the iqa "
                                             r"step again"):
        results.read_metric(run, "iqa")


def test_a_runs_preset_is_its_trainings_where_record_json_is_gone(tmp_path):
    """An audit deleted a damaged record.json (as its error advised): the run's next step resolved against the
    default preset, its page beside the smoke preset's. The training records the preset too."""
    run = _trained(tmp_path / "run")
    assert record.recorded_preset(run) is None and record.run_preset(run) == "default"  # a record from before
    params = json.loads((run / "train_params.json").read_text())
    (run / "train_params.json").write_text(json.dumps({**params, "preset": "smoke"}))
    assert record.recorded_preset(run) == "smoke" and record.run_preset(run) == "smoke"
    assert record.run_preset(run, "default") == "default"  # asked: the command refuses another (test_bad_input)


def test_a_table_is_checked_while_another_step_runs_and_a_gone_table_has_changed(tmp_path):
    """Only the step that wrote a table may read it unchecked (it is about to replace it): another step's page
    running (staged) reads it checked. A table a page read that is gone since counts as changed (the book would
    otherwise show a page made from a table that no longer exists)."""
    import hashlib

    from clipalign_utils import io
    from clipalign_utils.registry import table as registered

    run = _trained(tmp_path / "run")
    iqa = pd.DataFrame({column: [0.5, 0.4] for column in registered("iqa").columns}).assign(
        checkpoint=["epoch_0", "epoch_1"], distortion="all", dataset="embedded", distance="cosine")
    record.stage_entry(run, "iqa", record.resolve(run, "smoke", {}))
    io.write_tables({"iqa": iqa}, run)
    path = run / "metrics" / "iqa.csv"
    path.write_bytes(path.read_bytes()[:-20])  # damaged
    try:
        record.stage_entry(run, "interpolation", record.resolve(run, "smoke", {}))  # another step's page running
        with pytest.raises(ParameterError, match=r"iqa.csv is not the table the iqa step wrote"):
            results.read_metric(run, "iqa")
    finally:
        record.discard_staged()
    # a page's entry that read the table: the same bytes are current, other bytes or none at all are not
    entry = json.loads((run / "record.json").read_text())
    entry["steps"]["interpolation"] = {"preset": "smoke", "parameters": {}, "sources": {},
                                       "tables_read": {"metrics/iqa.csv": hashlib.sha256(path.read_bytes()).hexdigest()}}
    (run / "record.json").write_text(json.dumps(entry))
    assert record.changed_tables(run, "interpolation") == []
    path.write_bytes(path.read_bytes() + b"\n")
    assert record.changed_tables(run, "interpolation") == ["metrics/iqa.csv"]
    path.unlink()
    assert record.changed_tables(run, "interpolation") == ["metrics/iqa.csv"]


def test_a_staged_pages_evaluation_sets_are_recorded_with_its_entry_and_sets_are_drawn_per_input_size(tmp_path,
                                                                                                     monkeypatch):
    """A page's entry waits (staged) until its tables are written: the hashes of the sets it loaded meanwhile go
    into that entry, not into the entry it replaces (which the commit would then overwrite without them). A run
    with another input size draws its own evaluation sets rather than reading those drawn at the other size."""
    from clipalign_utils.data import cache

    run = _trained(tmp_path / "run")
    record.stage_entry(run, "noise", record.resolve(run, "smoke", {}))
    try:
        hashes = record.note_evaluation_sets(run, "noise", {"images": np.arange(4)})
        record.commit_staged(run, {})
    finally:
        record.discard_staged()
    assert json.loads((run / "record.json").read_text())["steps"]["noise"]["eval_sets"] == hashes

    monkeypatch.setenv("CLIPALIGN_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    params = {"seed": 0, "eval_seed": 0, "noise_dataset": "embedded", "sigmas": (0.1,)}
    for size in (32, 64, 32):
        cache.cached("noise", types.SimpleNamespace(run_dir=run, image_size=size), params,
                     lambda size=size: calls.append(size) or {"images": np.zeros((1, size, size, 3))})
    assert calls == [32, 64]


def test_a_run_missing_a_saved_checkpoint_or_stopped_early_is_not_measured(tmp_path):
    """A checkpoint its schedule saved, deleted by hand, or a training stopped before its last epoch: a step would
    measure the run without it, beside steps that measured it (fast tier: the trained-run tests are slow)."""
    from clipalign_utils import checkpoints
    from clipalign_utils.schedule import checkpoint_file, checkpoint_schedule, epoch_steps

    run = _trained(tmp_path / "run")
    params = json.loads((run / "train_params.json").read_text())
    saved = checkpoint_schedule(epoch_steps(params), int(params["epochs"]),
                                tuple(float(f) for f in params.get("early_checkpoints", ())))
    epochs = sorted({float(e) for e in saved.values()})
    every = [checkpoints.Checkpoint(run / "checkpoints" / checkpoint_file(e), e) for e in epochs]
    assert len(every) >= 2 and checkpoints.missing_checkpoints(run, every) == []
    assert checkpoints.missing_checkpoints(run, every[1:]) == [checkpoint_file(epochs[0])]
    assert checkpoints.unfinished_training(run, every) is None
    assert "stopped at epoch" in checkpoints.unfinished_training(run, every[:-1])


def _schedule_run(run_dir, params):
    """A run folder as this project's training leaves it, its checkpoints stand-in files (the checks read names)."""
    from clipalign_utils import train
    from clipalign_utils.schedule import checkpoint_file, checkpoint_schedule, epoch_steps

    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "train_params.json").write_text(json.dumps({k: record.jsonable(params[k]) for k in train.TRAIN_KEYS}))
    saved = checkpoint_schedule(epoch_steps(params), params["epochs"], params["early_checkpoints"])
    for epoch in [0.0, *saved.values()]:
        (run_dir / "checkpoints" / checkpoint_file(epoch)).write_bytes(b"weights")
    return run_dir


def test_discover_run_refuses_a_stopped_training_or_one_missing_a_saved_checkpoint(tmp_path):
    # unfinished_training and missing_checkpoints are pinned elsewhere; here the refusal itself: the folder's own
    # check (what the command line asks first) raises, naming the stop or the missing file.
    from clipalign_utils import checkpoints
    from clipalign_utils.errors import CheckpointError

    params = config.resolve("smoke", epochs=2, samples_per_epoch=256, early_checkpoints=(0.5,))
    run = _schedule_run(tmp_path / "run", params)
    (run / "params.txt").write_text("model: clipalign-tiny\n")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["epoch_0.5.pt", "epoch_0.pt", "epoch_1.pt", "epoch_2.pt"]
    checkpoints.check_run(run)
    (run / "checkpoints" / "epoch_2.pt").rename(tmp_path / "epoch_2.pt")
    with pytest.raises(CheckpointError, match=r"its training stopped at epoch 1 of 2 .*finish the training first"):
        checkpoints.check_run(run)
    (tmp_path / "epoch_2.pt").rename(run / "checkpoints" / "epoch_2.pt")
    (run / "checkpoints" / "epoch_0.5.pt").unlink()
    with pytest.raises(CheckpointError, match=r"lacks epoch_0\.5\.pt, which its training saved"):
        checkpoints.check_run(run)


def test_a_run_without_params_txt_needs_its_model_named(tmp_path):
    # Without params.txt the model is unknown: an error saying to pass it, and the name passed is the one used.
    from clipalign_utils import checkpoints
    from clipalign_utils.errors import CheckpointError

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "epoch_1.pt").write_bytes(b"weights")
    with pytest.raises(CheckpointError, match=r"params.txt is missing, so the model is unknown: pass the parameter"):
        checkpoints.run_files(tmp_path / "run")
    found, params, name, streamed = checkpoints.run_files(tmp_path / "run", "ViT-B-32")
    assert [c.name for c in found] == ["epoch_1"] and params == {} and name == "ViT-B-32" and not streamed


def test_a_siglip_run_is_built_with_siglips_initial_logit_scale_and_bias():
    # open_clip_train's main.py builds a --siglip model with init_logit_scale=log(10), init_logit_bias=-10 (its
    # loss's learned bias then lives in the model): a checkpoint loads only into a model built the same way.
    from clipalign_utils.checkpoints import model_options

    assert model_options({"siglip": "True"}) == {"init_logit_scale": pytest.approx(np.log(10)),
                                                 "init_logit_bias": -10.0}
    assert model_options({"siglip": "False"}) == {}


def test_a_notebook_opened_alone_trains_its_missing_run_first(tmp_path, capsys):
    # discover_or_train on a folder that does not exist yet (a notebook in Colab): trained, with one line saying so,
    # then discovered (two steps of 64 images: epoch_0 and epoch_1).
    from clipalign_utils import checkpoints

    params = config.resolve("smoke", epochs=1, samples_per_epoch=128, early_checkpoints=(), device="cpu")
    run = checkpoints.discover_or_train(tmp_path / "new", params, auto_train=True)
    assert f"{tmp_path / 'new'} holds no checkpoints: training the smoke preset's tiny model there first, on cpu" \
        in capsys.readouterr().out
    assert [c.name for c in run.checkpoints] == ["epoch_0", "epoch_1"] and run.model_name == "clipalign-tiny"


def _page_table(monkeypatch, run, cell, step="iqa") -> list[str]:
    """What the page of ``step`` on ``run`` shows above its run (step_page's table of parameters), as text."""
    from clipalign_utils import prose
    from clipalign_utils.orchestration import step_page

    shown = []
    monkeypatch.setattr(prose, "show", lambda obj, text: shown.append(text))
    monkeypatch.setattr(prose, "say", lambda text: shown.append(text))
    monkeypatch.setattr(step_page, "say", lambda text: shown.append(text))
    step_page._show_parameters(cell, run, step, record.for_page(cell, run, step, show=False))
    return shown


def test_a_pages_table_of_parameters_names_a_datasets_folder_as_the_introduction_does(tmp_path, monkeypatch):
    """An audit read `iqa_root /tmp/aud_T/traj/data/tid2013` on every step page, while the book's introduction
    shows `…/tid2013`: tables and pages hold no absolute path."""
    run = _trained(tmp_path / "run", seed=0)
    cell = {"run_dir": str(run), "preset": "smoke", "iqa_dataset": "tid2013", "iqa_root": str(tmp_path / "tid2013"),
            "distance": None}
    table = _page_table(monkeypatch, run, cell)[0]
    assert table.splitlines()[2:] == ["iqa_dataset               tid2013         given",
                                      "iqa_root                …/tid2013         given",
                                      "distance     normalized_euclidean  preset smoke"]
    assert str(tmp_path) not in table


def test_a_run_trained_elsewhere_shows_no_training_settings_of_the_preset_as_its_own(tmp_path, monkeypatch):
    """An audit read `image_size=32`, `texture_correlation=0.8`, `seed=0` ("preset default") on the pages of an
    RN50 trajectory streamed at 224 px: the table leaves out the preset's training and world settings of a run
    trained elsewhere, but keeps the model and the world an embedded set is drawn from."""
    run = tmp_path / "streamed"
    run.mkdir()
    (run / "source.json").write_text(json.dumps({"source": "elsewhere", "model": "tiny", "checkpoints": []}))
    cell = {"run_dir": str(run), "preset": "smoke", "seed": None, "model": "tiny", "image_size": None,
            "texture_correlation": None, "object_placement": None, "iqa_dataset": "tid2013",
            "iqa_root": str(tmp_path / "tid2013"), "iqa_levels": None}
    shown = _page_table(monkeypatch, run, cell)
    assert shown[0].splitlines()[2:] == ["model             tiny  given",
                                         "iqa_dataset    tid2013  given",
                                         "iqa_root     …/tid2013  given"]
    assert shown[1:] == ["not read with iqa_dataset=tid2013 (read with the embedded set only): iqa_levels",
                         "left out (the preset's values, not this run's: it was trained elsewhere): seed, image_size, "
                         "texture_correlation, object_placement"]
    embedded = _page_table(monkeypatch, run, {**cell, "iqa_dataset": "embedded", "iqa_root": ""})
    assert [line.split()[0] for line in embedded[0].splitlines()[2:]] == [
        "model", "image_size", "texture_correlation", "object_placement", "iqa_dataset", "iqa_levels"]  # no empty root
    assert embedded[1:] == ["left out (the preset's values, not this run's: it was trained elsewhere): seed"]
    own = _page_table(monkeypatch, _trained(tmp_path / "own", seed=0), {**cell, "run_dir": str(tmp_path / "own"),
                                                                          "model": None})
    assert "seed" in own[0] and "texture_correlation" in own[0] and not any("left out" in text for text in own)


def _synthesis_table(monkeypatch, cell) -> list[str]:
    """What the synthesis page shows on opening (open_runs: its table of parameters, the lines below), as text."""
    from clipalign_utils import prose
    from clipalign_utils.orchestration import step_page

    shown = []
    monkeypatch.setattr(prose, "show", lambda obj, text: shown.append(text))
    monkeypatch.setattr(prose, "say", lambda text: shown.append(text))
    monkeypatch.setattr(step_page, "say", lambda text: shown.append(text))
    monkeypatch.setattr(step_page, "ensure_run", lambda run, resolved: None)  # (a run to train: its table only)
    try:
        step_page.open_runs({"run_dir": None, "preset": "smoke", "auto_train": False, "run_dirs": None, "seed": None,
                             "eval_seed": None, "distance": None, "alignment_weight": None, "n_perm": None, **cell})
    finally:
        record.discard_staged()
    return shown


def test_the_synthesis_of_several_runs_shows_no_seed_of_its_own(tmp_path, monkeypatch):
    """An audit read `seed 0 (preset default)` on the synthesis of seeds 0, 1 and 2: the page reads the runs'
    tables, not their training, and the introduction lists each run's training settings."""
    for seed in (0, 1):
        _trained(tmp_path / f"tiny-seed{seed}", seed=seed)
    analysis = ["eval_seed                            0  preset smoke",
                "distance          normalized_euclidean  preset smoke",
                "alignment_weight                   0.5  preset smoke",
                "n_perm                             500  preset smoke"]
    line = "left out (each run's own: the introduction lists them run by run): seed"
    runs = f"{tmp_path / 'tiny-seed0'},{tmp_path / 'tiny-seed1'}"
    for cell in ({"run_dir": str(tmp_path)}, {"run_dir": str(tmp_path / "out"), "run_dirs": runs}):
        shown = _synthesis_table(monkeypatch, cell)  # the folder of runs (the CLI's synthesis), or runs given
        assert shown[0].splitlines()[2:] == analysis and shown[1:] == [line]


def test_the_synthesis_of_a_run_trained_elsewhere_shows_no_seed_of_the_preset_as_its_own(tmp_path, monkeypatch):
    """An audit read `seed 0 (preset default)` on the synthesis of a trajectory streamed with --checkpoints. One
    run of clipalign's keeps its recorded seed; one the page is about to train (opened alone), the seed it trains
    with."""
    streamed = tmp_path / "streamed"
    streamed.mkdir()
    (streamed / "source.json").write_text(json.dumps({"source": "elsewhere", "model": "tiny", "checkpoints": []}))
    shown = _synthesis_table(monkeypatch, {"run_dir": str(tmp_path / "out"), "run_dirs": str(streamed)})
    assert [line.split()[0] for line in shown[0].splitlines()[2:]] == ["eval_seed", "distance", "alignment_weight",
                                                                       "n_perm"]
    assert shown[1:] == ["left out (the preset's values, not this run's: it was trained elsewhere): seed"]
    own = _synthesis_table(monkeypatch, {"run_dir": str(_trained(tmp_path / "own", seed=3))})
    assert own[0].splitlines()[2] == "seed                                 3  train_params.json" and len(own) == 1
    (tmp_path / "new").mkdir()  # (empty: the page trains a run there)
    trained_here = _synthesis_table(monkeypatch, {"run_dir": str(tmp_path / "new"), "auto_train": True})
    assert trained_here[0].splitlines()[2] == "seed                                 0  preset smoke"
    assert len(trained_here) == 1


def test_the_synthesis_of_a_run_of_clipalign_whose_record_lacks_a_setting_does_not_say_it_was_trained_elsewhere(
        tmp_path, monkeypatch):
    """The seed of a run clipalign trained, missing from its train_params.json (hand-edited, or written before the
    setting existed), is the preset's: left out, for that reason, not for a training elsewhere it never had."""
    own = _trained(tmp_path / "own", seed=3)
    train_record = own / "train_params.json"
    train_record.write_text(json.dumps({k: v for k, v in json.loads(train_record.read_text()).items() if k != "seed"}))
    shown = _synthesis_table(monkeypatch, {"run_dir": str(own)})
    assert shown[1:] == ["left out (the preset's values, not this run's: its training record (train_params.json) "
                         "does not give them): seed"]


def test_the_synthesis_of_a_folder_holding_one_run_says_its_seed_is_the_runs_own(tmp_path, monkeypatch):
    """`clipalign run --seeds 3` synthesises a folder whose record holds no run's seed: the page said the seed
    was the preset's because the run's train_params.json lacked it, which it does not."""
    _trained(tmp_path / "tiny-seed3", seed=3)
    shown = _synthesis_table(monkeypatch, {"run_dir": str(tmp_path)})
    assert shown[1:] == ["left out (the run's own: the introduction lists them): seed"]


def test_the_synthesis_of_a_fresh_run_keeps_the_seed_its_record_gives_though_the_page_had_it_from_the_preset(tmp_path):
    """A smoke book's synthesis said "left out (the preset's values, not this run's: it was trained elsewhere):
    seed": the command resolves every page before it trains, so the page's entry has the seed from the preset,
    which the run was then trained with and records. Only what the run's record lacks is left out."""
    from clipalign_utils.orchestration import step_page

    run = _trained(tmp_path / "run")
    before_training = record.resolve(None, "smoke", {})
    assert before_training.sources["seed"] == "preset smoke"
    assert step_page._not_the_synthesised(run, [run], before_training, False)[0] == set()
    other = _trained(tmp_path / "other", seed=3)  # its record's seed is not the one the page has
    assert step_page._not_the_synthesised(other, [other], before_training, False)[0] == {"seed"}
    train_record = run / "train_params.json"
    train_record.write_text(json.dumps({k: v for k, v in json.loads(train_record.read_text()).items() if k != "seed"}))
    assert step_page._not_the_synthesised(run, [run], before_training, False) == (
        {"seed"}, "the preset's values, not this run's: its training record (train_params.json) does not give them")


def test_a_step_s_entry_records_as_given_only_what_its_page_reads(tmp_path, monkeypatch):
    """An audit: ``--only iqa -p sigmas=0.1`` (rightly noted as read by no page it runs) recorded
    steps.iqa.parameters.sigmas = [0.1] from "given". The entry the command writes, and the one the page records
    (from a command's entry holding every value given), hold the preset's value for what the page does not
    declare; what it declares stays given."""
    from clipalign_utils.orchestration import pipeline

    run = tmp_path / "run"
    run.mkdir()
    given = record.resolve(run, "smoke", {"sigmas": "0.1", "distance": "euclidean"})
    assert given.sources["sigmas"] == record.GIVEN
    monkeypatch.setattr(pipeline, "run_notebook", lambda name, run_dir, *args, **kwargs: run_dir / f"{name}.ipynb")
    pipeline.execute_step("iqa", run, given, progress=False)
    entry = record.read(run)["steps"]["iqa"]
    preset_sigmas = config.resolve("smoke")["sigmas"]
    assert entry["parameters"]["sigmas"] == record.jsonable(preset_sigmas)
    assert entry["sources"]["sigmas"] == "preset smoke"
    assert entry["parameters"]["distance"] == "euclidean" and entry["sources"]["distance"] == record.GIVEN
    # an entry written whole (by an earlier version, or a page run without the step's declarations)
    record.write_entry(run, "iqa", given)
    declared = [name for name in pipeline.notebook_parameters("iqa") if name in config.PRESETS["smoke"]]
    namespace = {"run_dir": str(run), "preset": "smoke", **{name: given.values[name] for name in declared}}
    on_page = record.for_page(namespace, run, "iqa", show=False)
    assert on_page.sources["sigmas"] == "preset smoke" and on_page.values["sigmas"] == preset_sigmas
    assert on_page.sources["distance"] == record.GIVEN
    # the noise step, which reads sigmas, has it as given
    assert pipeline.for_step(run, "noise", given).sources["sigmas"] == record.GIVEN


def test_a_run_s_parameters_are_those_its_steps_were_given_not_a_later_step_s_preset_value(tmp_path):
    """A step records the preset's value for a parameter its page does not read: a sweep's run given -p sigmas is
    labelled by the noise step's sigmas, not by the synthesis's (which runs later and reads none)."""
    run = tmp_path / "run"
    run.mkdir()
    given = record.resolve(run, "smoke", {"sigmas": "0.1"})
    record.write_entry(run, "noise", given)
    record.write_entry(run, "tradeoff", record.as_read_by(given, ["distance", "seed"]))
    assert results.run_parameters(run)["sigmas"] == (0.1,)
