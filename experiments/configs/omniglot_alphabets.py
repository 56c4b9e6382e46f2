r"""Omniglot alphabets: one task per alphabet, its characters as classes (prepared TFDS data).

  python -m experiments.train --config=experiments/configs/omniglot_alphabets.py \
    --config.data_dir=/data/tfds --workdir=/tmp/omniglot

Reads TFDS ``omniglot`` from ``--config.data_dir`` (default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``), never downloading it: prepare it first (docs/data.md). 50 tasks
with their own images and 14 to 55 classes each; 10 tasks are sampled per step. ``:smoke``
shrinks the data too (2 training drawings per character, 14×14 images).
"""

import ml_collections

from experiments.configs.common import tfds_config

SMOKE_DATA = {"examples_per_class": 2, "image_size": 14}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  # smoke: every task (mock data may have < 10)
  return tfds_config(
    arg,
    "omniglot_alphabets",
    SMOKE_DATA,
    num_seeds=2,
    num_steps=2000,
    tasks_per_batch=10,
    smoke_fields={"tasks_per_batch": 0},
  )
