r"""CIFAR-100 superclasses: 20 tasks of 5 classes each (prepared TFDS data).

  python -m experiments.train --config=experiments/configs/cifar100_superclasses.py \
    --config.data_dir=/data/tfds --workdir=/tmp/cifar100

Reads TFDS ``cifar100`` from ``--config.data_dir`` (default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``), never downloading it: prepare it first (docs/data.md). Each task
has its own images (one superclass); 10 of the 20 tasks are sampled per step. ``:smoke``
shrinks the data too (4 superclasses, 4 / 2 images per class).
"""

import ml_collections

from experiments.configs import default
from experiments.configs.common import apply_args
from mtl_jax.data.tfds_sets import default_data_dir

SMOKE_DATA = {
  "superclasses": ("aquatic_mammals", "fish", "flowers", "people"),
  "examples_per_class": 4,
  "test_examples_per_class": 2,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "cifar100_superclasses"
  smoke = "smoke" in (arg or "").split(",")
  config.taskset_kwargs = ml_collections.ConfigDict(SMOKE_DATA if smoke else {})
  config.data_dir = default_data_dir()
  width, depth = (8, 2) if smoke else (32, 3)
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "patch_conv", "width": width, "depth": depth}
  )
  config.num_seeds = 2
  config.num_steps = 2000
  config.tasks_per_batch = 2 if smoke else 10
  return apply_args(config, arg)
