r"""CIFAR-100 superclasses: 20 tasks of 5 classes each (prepared TFDS data).

  python -m experiments.train --config=experiments/configs/cifar100_superclasses.py \
    --config.data_dir=/data/tfds --workdir=/tmp/cifar100

Reads TFDS ``cifar100`` from ``--config.data_dir`` (default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``), never downloading it: prepare it first (docs/data.md). Each task
has its own images (one superclass); 10 of the 20 tasks are sampled per step. ``:smoke``
shrinks the data too (4 superclasses, 4 / 2 images per class).
"""

import ml_collections

from experiments.configs.common import tfds_config

SMOKE_DATA = {
  "superclasses": ("aquatic_mammals", "fish", "flowers", "people"),
  "examples_per_class": 4,
  "test_examples_per_class": 2,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return tfds_config(
    arg,
    "cifar100_superclasses",
    SMOKE_DATA,
    num_seeds=2,
    num_steps=2000,
    tasks_per_batch=10,
    smoke_fields={"tasks_per_batch": 2},
  )
