"""The dataset registry: one list of datasets per task, read by config.resolve and by each task's dispatcher;
a toy dataset registered at run time is a valid parameter value and loads; the root helper names the
parameter a missing folder belongs to."""
from __future__ import annotations

import numpy as np
import pytest

from clipalign_utils import config
from clipalign_utils.data import registry
from clipalign_utils.data.cue_conflict import load_cue_conflict
from clipalign_utils.data.iqa import load_iqa
from clipalign_utils.data.noise import ClassificationSet, load_noise_dataset
from clipalign_utils.data.registry import dataset_names, get_dataset, register_dataset, unregister_dataset
from clipalign_utils.data.roots import open_root
from clipalign_utils.data.saliency import load_saliency
from clipalign_utils.data.two_afc import load_two_afc
from clipalign_utils.errors import DatasetError, ParameterError

BUILT_IN = {
    "iqa": ("embedded", "tid2013", "kadid10k"),
    "cue_conflict": ("embedded", "geirhos"),
    "noise": ("embedded", "cifar100"),
    "similarity": ("embedded", "bapps", "nights"),
    "saliency": ("embedded", "mit1003", "cat2000"),
}
REAL = [(task, name) for task, names in BUILT_IN.items() for name in names if name != "embedded"]


def dispatch(task: str, dataset: str, root, params: dict | None = None):
    """``dataset`` of ``task`` through the task's public dispatcher, at small sizes."""
    params = params or config.resolve("smoke")
    if task == "iqa":
        return load_iqa(dataset, root, params, image_size=32)
    if task == "cue_conflict":
        return load_cue_conflict(dataset, root, params, image_size=32)
    if task == "noise":
        return load_noise_dataset(dataset, root, params)
    if task == "similarity":
        return load_two_afc(dataset, root, image_size=32)
    return load_saliency(dataset, root, image_size=32, seed=0, n_images=4)


# --- the registry is what config accepts -----------------------------------------------------------
def test_tasks_and_built_in_names_in_order():
    assert registry.TASKS == tuple(BUILT_IN)
    for task, names in BUILT_IN.items():
        assert dataset_names(task) == names


@pytest.mark.parametrize("task", list(BUILT_IN))
def test_config_accepts_exactly_the_registered_names(task):
    parameter = f"{task}_dataset"
    assert tuple(config.parameter_choices()[parameter]) == dataset_names(task)
    for name in dataset_names(task):
        assert config.resolve("smoke", **{parameter: name})[parameter] == name
    with pytest.raises(ParameterError, match=f"{parameter}='nope': choose one of {', '.join(dataset_names(task))}$"):
        config.resolve("smoke", **{parameter: "nope"})


@pytest.mark.parametrize("task", list(BUILT_IN))
def test_every_built_in_target_resolves_to_a_loader(task):
    for name in dataset_names(task):
        loader = get_dataset(task, name)
        assert callable(loader) and loader.__name__ == f"{name}_set"
        assert get_dataset(task, name) is loader  # resolved once, then cached


# --- unknown names ----------------------------------------------------------------------------------
def test_unknown_name_is_one_line_naming_the_parameter_and_the_choices():
    with pytest.raises(ParameterError) as info:
        get_dataset("iqa", "foo")
    assert str(info.value) == "iqa_dataset='foo': choose one of embedded, tid2013, kadid10k"
    with pytest.raises(ParameterError, match="unknown dataset task 'depth'; tasks: iqa, cue_conflict"):
        dataset_names("depth")


@pytest.mark.parametrize("task", list(BUILT_IN))
def test_dispatchers_reject_unknown_names_with_the_registry_message(task):
    expected = f"{task}_dataset='foo': choose one of {', '.join(BUILT_IN[task])}"
    with pytest.raises(ParameterError) as info:
        dispatch(task, "foo", "")
    assert str(info.value) == expected


# --- a toy dataset registered at run time ----------------------------------------------------------
@pytest.fixture
def toy_noise():
    """A 2-class toy set for the noise task, registered with the decorator and removed afterwards."""
    @register_dataset("noise", "toy")
    def toy_set(*, per_class: int, seed: int, **_) -> ClassificationSet:
        labels = np.repeat(np.arange(2), per_class)
        images = np.full((len(labels), 8, 8, 3), seed % 256, dtype=np.uint8)
        return ClassificationSet(images, labels, ("zero", "one"), "toy")

    yield toy_set
    unregister_dataset("noise", "toy")


def test_toy_dataset_is_accepted_by_resolve_and_loaded_by_the_dispatcher(toy_noise):
    assert dataset_names("noise") == ("embedded", "cifar100", "toy")
    params = config.resolve("smoke", noise_dataset="toy", test_per_class=3, eval_seed=5)  # the loader gets eval_seed
    assert params["noise_dataset"] == "toy"
    data = load_noise_dataset(params["noise_dataset"], params["noise_root"], params)
    assert data.name == "toy" and data.classnames == ("zero", "one")
    assert np.bincount(data.labels).tolist() == [3, 3] and int(data.images[0, 0, 0, 0]) == 5
    with pytest.raises(ParameterError, match="noise_dataset 'toy' is registered already"):
        register_dataset("noise", "toy", toy_noise)
    unregister_dataset("noise", "toy")
    with pytest.raises(ParameterError, match="noise_dataset='toy': choose one of embedded, cifar100$"):
        config.resolve("smoke", noise_dataset="toy")


@pytest.fixture
def echo_everywhere():
    """A loader that returns the keywords it is called with, registered as ``echo`` in every task."""
    for task in BUILT_IN:
        register_dataset(task, "echo", lambda **keywords: keywords)
    yield
    for task in BUILT_IN:
        unregister_dataset(task, "echo")


@pytest.mark.parametrize("task, keywords", [
    ("iqa", {"root", "size", "mode", "world_config", "seed", "levels", "observer"}),
    ("cue_conflict", {"root", "size", "world_config", "seed", "per_pair"}),
    ("noise", {"root", "per_class", "seed", "world_config"}),
    ("similarity", {"root", "protocol", "split", "image_size", "seed", "texture_scale", "resize", "object_placement"}),
    ("saliency", {"root", "image_size", "seed", "n_images", "texture_correlation", "texture_scale",
                  "object_placement"}),
])
def test_each_dispatcher_calls_a_registered_loader_with_its_keywords(echo_everywhere, task, keywords):
    params = config.resolve("smoke", **{f"{task}_dataset": "echo"})
    got = dispatch(task, params[f"{task}_dataset"], "some/folder", params)
    assert set(got) == keywords and got["root"] == "some/folder"


# --- the root helper ---------------------------------------------------------------------------------
@pytest.mark.parametrize("root", [None, "", "   "])
def test_open_root_without_a_folder_names_both_parameters(root):
    with pytest.raises(DatasetError) as info:
        open_root("noise", "toy", root, lambda r: pytest.fail("read without a root"), "pass the toy folder")
    assert str(info.value) == "noise_dataset=toy needs noise_root: pass the toy folder"


def test_open_root_prefixes_a_dataset_error_with_the_root_parameter(tmp_path):
    missing = tmp_path / "absent"

    def read(root):
        raise DatasetError(f"{root} does not exist")

    with pytest.raises(DatasetError) as info:
        open_root("saliency", "toy", missing, read, "hint")
    assert str(info.value) == f"saliency_root={str(missing)!r}: {missing} does not exist"

    def read_naming_it(root):
        raise DatasetError(f"saliency_root '{root}' is empty")

    with pytest.raises(DatasetError) as info:  # already named: left as it is
        open_root("saliency", "toy", missing, read_naming_it, "hint")
    assert str(info.value) == f"saliency_root '{missing}' is empty"
    assert open_root("saliency", "toy", tmp_path, lambda r: ("read", r), "hint") == ("read", tmp_path)


@pytest.mark.parametrize("task, dataset", REAL)
def test_every_real_dataset_names_its_root_parameter(tmp_path, task, dataset):
    with pytest.raises(DatasetError, match=f"^{task}_dataset={dataset} needs {task}_root: "):
        dispatch(task, dataset, "")
    with pytest.raises(DatasetError, match=f"{task}_root") as info:
        dispatch(task, dataset, str(tmp_path / "absent"))
    assert "absent" in str(info.value)


def test_every_real_dataset_has_a_display_name():
    # the pages named a dataset by its id ("kadid10k"), the similarity page upper-casing bapps ad hoc
    for task in registry.TASKS:
        for name in dataset_names(task):
            assert registry.display_name(name) == ("embedded" if name == "embedded" else registry.DISPLAY_NAMES[name])
    assert registry.display_name("a_set_registered_at_run_time") == "a_set_registered_at_run_time"


def test_a_sentence_names_the_embedded_set_as_a_reader_would_and_a_real_set_by_its_display_name():
    # "128 images of 8 classes from embedded", "dataset embedded": the set's id where a reader expects a name
    assert registry.dataset_phrase("embedded") == "the embedded set"
    assert registry.dataset_phrase("embedded", noun="") == "the embedded set"
    assert registry.dataset_phrase("kadid10k") == "dataset KADID-10k"
    assert registry.dataset_phrase("cifar100", noun="") == "CIFAR-100"


def test_the_synthesis_names_each_real_evaluation_set_as_every_page_does():
    # the synthesis said "Geirhos et al.'s cue-conflict images" where every page says "Geirhos cue-conflict"
    from clipalign_utils.results.evaluation import EVALUATION_DATA

    for task, described in EVALUATION_DATA.items():
        for name, what in described.items():
            if name != "embedded":
                assert what.startswith(registry.display_name(name)), (task, name, what)
