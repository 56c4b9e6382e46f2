r"""Omniglot alphabets: one task per alphabet, its characters as classes (prepared TFDS data).

  python -m experiments.train --config=experiments/configs/omniglot_alphabets.py \
    --config.data_dir=/data/tfds --workdir=/tmp/omniglot

Reads TFDS ``omniglot`` from ``--config.data_dir`` (default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``), never downloading it: prepare it first (docs/data.md). 50 tasks
with their own images and 14 to 55 classes each; 10 tasks are sampled per step. ``:smoke``
shrinks the data too (2 training drawings per character, 14×14 images).
"""

import ml_collections

from experiments.configs import default
from experiments.configs.common import apply_args
from mtl_jax.data.tfds_sets import default_data_dir

SMOKE_DATA = {"examples_per_class": 2, "image_size": 14}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "omniglot_alphabets"
  smoke = "smoke" in (arg or "").split(",")
  config.taskset_kwargs = ml_collections.ConfigDict(SMOKE_DATA if smoke else {})
  config.data_dir = default_data_dir()
  width, depth = (8, 2) if smoke else (32, 3)
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "patch_conv", "width": width, "depth": depth}
  )
  config.num_seeds = 2
  config.num_steps = 2000
  config.tasks_per_batch = 0 if smoke else 10  # smoke: every task (mock data may have < 10)
  return apply_args(config, arg)
