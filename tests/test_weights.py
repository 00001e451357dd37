"""netspec.load_weights: strict loading of a state_dict into a compiled model, with every problem listed at once."""

from __future__ import annotations

import pytest
import torch

import netspec
from conftest import run_python
from netspec.backends.weights import SHOWN, WeightsError, plan, rename_key


def lenet():
    torch.manual_seed(0)
    return netspec.load("lenet").eval()


def small_resnet(**params):
    return netspec.load("imagenet/resnet18", size=32, **params).eval()


def test_load_weights_is_public_api():
    assert "load_weights" in netspec.__all__ and callable(netspec.load_weights)


def test_a_models_own_state_dict_loads_into_a_fresh_compile_and_gives_the_same_outputs():
    source, target = lenet(), netspec.load("lenet").eval()
    x = torch.rand(2, 1, 28, 28)
    assert not torch.equal(source(x), target(x))
    assert netspec.load_weights(target, source.state_dict()) is target
    assert torch.equal(source(x), target(x))


def test_missing_unexpected_and_reshaped_keys_are_all_listed_and_nothing_is_loaded():
    model = lenet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(model.state_dict())
    state["extra.weight"] = state.pop("0.weight")        # one missing (0.weight), one unexpected
    state["3.weight"] = torch.zeros(1, 2, 3)              # another shape
    state = {k: v + 1 for k, v in state.items()}          # would change the model if anything were loaded
    with pytest.raises(WeightsError) as caught:
        netspec.load_weights(model, state)
    error = caught.value
    assert error.missing == ["0.weight"] and error.unexpected == ["extra.weight"]
    assert [(m.key, m.model_shape, m.given_shape) for m in error.mismatched] == [("3.weight", (16, 6, 5, 5), (1, 2, 3))]
    text = str(error)
    assert "8 of 10 tensors load, 1 new, 1 with another shape, 1 dropped" in text
    assert "3.weight: [16, 6, 5, 5] vs [1, 2, 3]" in text
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_data_parallel_prefix_is_explained_and_rename_strips_it():
    model = lenet()
    wrapped = {f"module.{k}": v for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError, match=r'rename=\{"module": ""\}'):
        netspec.load_weights(model, wrapped)
    netspec.load_weights(model, wrapped, rename={"module": ""})


def test_fine_tuning_with_another_number_of_classes_skips_the_classifier_when_asked():
    imagenet, ten = small_resnet(), small_resnet(num_classes=10)
    with pytest.raises(WeightsError, match=r"skip=\['fc'\]"):
        netspec.load_weights(ten, imagenet.state_dict())
    fc_before = ten.fc.weight.clone()
    netspec.load_weights(ten, imagenet.state_dict(), skip=["fc"])
    assert torch.equal(ten.fc.weight, fc_before)
    conv = "layer4.1.conv2"
    assert torch.equal(ten.get_submodule(conv).weight, imagenet.get_submodule(conv).weight)


def test_two_keys_renamed_onto_one_are_an_error_since_each_tensor_is_used_once():
    with pytest.raises(WeightsError) as caught:
        plan({"a.weight": (2,)}, {"a.weight": (2,), "b.weight": (2,)}, rename={"b": "a"})
    assert caught.value.doubled == [("a.weight", ["a.weight", "b.weight"])]
    assert "given twice" in str(caught.value)


def test_a_near_miss_name_gets_a_hint_naming_both_modules():
    with pytest.raises(WeightsError, match=r"rename=\{'layer1\.0\.norm1': 'layer1\.0\.bn1'\}"):
        plan({"layer1.0.bn1.weight": (4,)}, {"layer1.0.norm1.weight": (4,)})


def test_rename_replaces_the_longest_whole_module_prefix():
    table = {"layer1": "stage1", "layer1.0": "first", "module": ""}
    assert rename_key("layer1.0.conv1.weight", table) == "first.conv1.weight"
    assert rename_key("layer1.1.conv1.weight", table) == "stage1.1.conv1.weight"
    assert rename_key("layer10.weight", table) == "layer10.weight"      # `layer1` is not a prefix of `layer10`
    assert rename_key("module.fc.bias", table) == "fc.bias"


def test_long_lists_are_cut_with_a_count_of_the_rest():
    with pytest.raises(WeightsError) as caught:
        plan({}, {f"k{i}.weight": (1,) for i in range(SHOWN + 5)})
    assert len(caught.value.unexpected) == SHOWN + 5 and "… and 5 more" in str(caught.value)


def test_a_file_saved_with_torch_save_loads_by_path(tmp_path):
    source, target = lenet(), netspec.load("lenet")
    torch.save(source.state_dict(), tmp_path / "w.pt")
    netspec.load_weights(target, tmp_path / "w.pt")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_importing_the_weights_module_does_not_import_torch():
    done = run_python("import sys, netspec.backends.weights; print('torch' in sys.modules)")
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
