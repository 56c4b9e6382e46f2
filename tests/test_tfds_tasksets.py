"""The TFDS task sets under ``tfds.testing.mock_data``: no download, no TensorFlow.

The mock serves random examples with each dataset's real features (image sizes, label
ranges), so these tests check the task sets' structure (tasks, shapes, label ranges,
shared vs per-task inputs, determinism), that every config's ``:smoke`` trains end to end,
and that data which is not prepared is one clear error at once (in-process and through the
launcher: exit 2, one line, nothing written).
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.cli import load_config
from mtl_jax import data, experiment
from mtl_jax.data import tfds_sets
from mtl_jax.data.tfds_sets import celeba, cifar100

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("omniglot_alphabets", "celeba_attributes", "cifar100_superclasses", "multi_mnist")


@pytest.fixture
def mock():
  with tfds.testing.mock_data(num_examples=64):
    yield


def _labels(ts, i, split="train"):
  n = getattr(ts, f"n_{split}")[i]
  return getattr(ts, f"y_{split}")[i, :n, 0]


def test_multi_mnist_shared_inputs_and_deterministic(mock, tmp_path):
  ts = data.get_taskset("multi_mnist", num_train=20, num_test=10, data_dir=str(tmp_path))
  assert ts.names == ["left", "right"] and ts.shared_inputs
  assert ts.x_train.shape == (2, 20, 28, 28, 1) and list(ts.n_test) == [10, 10]
  assert 0.0 <= ts.x_train.min() and ts.x_train.max() <= 1.0
  np.testing.assert_array_equal(ts.x_train[0], ts.x_train[1])
  for i in range(2):
    y = _labels(ts, i)
    assert set(np.unique(y)) <= set(range(10))
  again = data.get_taskset("multi_mnist", num_train=20, num_test=10, data_dir=str(tmp_path))
  np.testing.assert_array_equal(ts.x_train, again.x_train)
  np.testing.assert_array_equal(ts.y_test, again.y_test)
  other = data.get_taskset("multi_mnist", num_train=20, num_test=10, seed=1, data_dir=str(tmp_path))
  assert not np.array_equal(ts.x_train, other.x_train)
  big = data.get_taskset(
    "multi_mnist", num_train=8, num_test=4, image_size=36, data_dir=str(tmp_path)
  )
  assert big.input_shape == (36, 36, 1)


def test_cifar100_superclasses(mock, tmp_path):
  assert np.all(np.bincount(cifar100.FINE_TO_COARSE) == 5)
  assert sorted(set(cifar100.CLASS_IN_TASK)) == list(range(5))
  ts = data.get_taskset(
    "cifar100_superclasses", examples_per_class=1, test_examples_per_class=2, data_dir=str(tmp_path)
  )
  assert ts.names == list(cifar100.SUPERCLASSES) and not ts.shared_inputs
  assert ts.output_size == 5 and ts.input_shape == (32, 32, 3)
  assert np.all(ts.n_train <= 5) and np.all(ts.n_test <= 10)
  for i in range(ts.num_tasks):
    assert set(np.unique(_labels(ts, i))) <= set(range(5))
  sub = data.get_taskset(
    "cifar100_superclasses",
    superclasses=("people", "fish"),
    examples_per_class=2,
    image_size=16,
    data_dir=str(tmp_path),
  )
  assert sub.names == ["fish", "people"] and sub.input_shape == (16, 16, 3)
  with pytest.raises(ValueError, match="superclasses must be distinct names"):
    data.get_taskset("cifar100_superclasses", superclasses=("fishes",), data_dir=str(tmp_path))


def test_celeba_attributes(mock, tmp_path):
  ts = data.get_taskset("celeba_attributes", num_train=12, num_test=6, data_dir=str(tmp_path))
  assert ts.names == list(celeba.ATTRIBUTES) and ts.num_tasks == 40 and ts.shared_inputs
  assert all(s.loss == "sigmoid_ce" and s.output_size == 1 for s in ts.specs)
  assert ts.x_train.shape == (40, 12, 24, 24, 3) and list(ts.n_test) == [6] * 40
  assert set(np.unique(ts.y_train)) <= {0.0, 1.0}
  sub = data.get_taskset(
    "celeba_attributes", attributes=("Smiling", "Male"), num_train=4, data_dir=str(tmp_path)
  )
  assert sub.names == ["Smiling", "Male"]
  with pytest.raises(ValueError, match="'Smilling'"):
    data.get_taskset("celeba_attributes", attributes=("Smilling",), data_dir=str(tmp_path))


def test_omniglot_alphabets(mock, tmp_path):
  ts = data.get_taskset("omniglot_alphabets", image_size=14, data_dir=str(tmp_path))
  assert not ts.shared_inputs and ts.input_shape == (14, 14, 1)
  assert all(n.startswith("alphabet") for n in ts.names)
  assert 0.0 <= ts.x_train.min() and ts.x_train.max() <= 1.0
  for i, spec in enumerate(ts.specs):
    assert spec.loss == "softmax_ce"
    train, test = _labels(ts, i), _labels(ts, i, "test")
    # Every class (character) of the alphabet has drawings in both splits.
    assert set(np.unique(train)) == set(range(spec.output_size)) == set(np.unique(test))
  few = data.get_taskset(
    "omniglot_alphabets", num_alphabets=25, image_size=8, data_dir=str(tmp_path)
  )
  assert all(int(n.removeprefix("alphabet")) < 25 for n in few.names)
  with pytest.raises(ValueError, match="examples_per_class must be an integer >= 1"):
    data.get_taskset("omniglot_alphabets", examples_per_class=0, data_dir=str(tmp_path))


@pytest.mark.parametrize("name", NAMES)
def test_not_prepared_is_one_clear_error_at_once(name, tmp_path):
  dataset = tfds_sets.TFDS_TASKSETS[name][1]
  start = time.perf_counter()
  with pytest.raises(tfds_sets.DataNotPreparedError) as e:
    data.get_taskset(name, data_dir=str(tmp_path))
  assert time.perf_counter() - start < 1.0
  message = str(e.value)
  assert f"'{dataset}'" in message and repr(str(tmp_path)) in message and name in message
  assert f"tfds build {dataset} --data_dir={tmp_path} --file_format=array_record" in message
  assert "docs/data.md" in message and "\n" not in message


def test_check_prepared_wants_array_record_files(tmp_path):
  version = tmp_path / "mnist" / "3.0.1"
  version.mkdir(parents=True)
  (version / "dataset_info.json").write_text("{}")
  (version / "mnist-train.tfrecord-00000-of-00001").write_text("")
  with pytest.raises(tfds_sets.DataNotPreparedError, match="no ArrayRecord files"):
    tfds_sets.check_prepared("multi_mnist", "mnist", str(tmp_path))
  (version / "mnist-train.array_record-00000-of-00001").write_text("")
  assert tfds_sets.check_prepared("multi_mnist", "mnist", str(tmp_path)) == str(tmp_path)


def test_config_data_dir_feeds_the_task_set():
  config = load_config(os.path.join(ROOT, "experiments/configs/multi_mnist.py"))
  assert config.data_dir == tfds_sets.default_data_dir()
  config.data_dir = "/somewhere/tfds"
  assert config.taskset_kwargs.data_dir == "/somewhere/tfds"
  # Another config file, switched to a TFDS task set, gets the field too.
  config = load_config(
    os.path.join(ROOT, "experiments/configs/default.py:taskset=celeba_attributes")
  )
  config.data_dir = "/elsewhere"
  assert config.taskset_kwargs.data_dir == "/elsewhere"


@pytest.mark.parametrize("name", NAMES)
def test_smoke_config_trains_under_mock_data(name, mock, tmp_path):
  config = load_config(os.path.join(ROOT, f"experiments/configs/{name}.py:smoke"))
  config.data_dir = str(tmp_path / "tfds")
  summary = experiment.train_and_evaluate(config, str(tmp_path / "wd"), progress=False)
  taskset = data.get_taskset(name, **dict(config.taskset_kwargs))
  assert list(summary["tasks"]) == taskset.names
  assert "delta_m" in summary
  with open(tmp_path / "wd" / "config.json") as f:
    assert json.load(f)["taskset_kwargs"]["data_dir"] == str(tmp_path / "tfds")


def test_launcher_not_prepared_exit_2_one_line_nothing_written(tmp_path):
  workdir = tmp_path / "wd"
  command = [
    sys.executable,
    "-m",
    "experiments.train",
    "--config=experiments/configs/default.py",
    "--config.taskset=cifar100_superclasses",
    f"--config.data_dir={tmp_path}",
    f"--workdir={workdir}",
  ]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: task set 'cifar100_superclasses'")
  assert f"tfds build cifar100 --data_dir={tmp_path}" in lines[0]
  assert not workdir.exists() and result.stdout == ""


def test_patch_conv_block_is_a_3x3_same_conv():
  import flax.linen as nn
  import jax

  from mtl_jax.models.patch_conv import PatchConvBlock

  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 3))
  block = PatchConvBlock(4)
  params = block.init(jax.random.PRNGKey(1), x)["params"]
  kernel = params["Dense_0"]["kernel"].reshape(3, 3, 3, 4)  # HWIO
  conv = nn.Conv(4, (3, 3))
  want = nn.avg_pool(
    nn.relu(conv.apply({"params": {"kernel": kernel, "bias": params["Dense_0"]["bias"]}}, x)),
    (2, 2),
    strides=(2, 2),
  )
  np.testing.assert_allclose(block.apply({"params": params}, x), want, atol=1e-5)
