r"""CelebA attributes: 40 binary tasks on the same faces (prepared TFDS data).

  python -m experiments.train --config=experiments/configs/celeba_attributes.py \
    --config.data_dir=/data/tfds --workdir=/tmp/celeba
  python -m experiments.train --config=experiments/configs/celeba_attributes.py \
    --config.data_dir=/data/tfds --config.taskset_kwargs.attributes="('Smiling','Male')"

Reads TFDS ``celeb_a`` from ``--config.data_dir`` (default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``), never downloading it: prepare it first (docs/data.md). All tasks
label the same images (shared inputs); ``taskset_kwargs.attributes`` picks a subset by
name. ``:smoke`` shrinks the data too (5 attributes, 64 / 32 images of 16×16).
"""

import ml_collections

from experiments.configs.common import tfds_config

SMOKE_DATA = {
  "attributes": ("Smiling", "Male", "Young", "Eyeglasses", "Wearing_Hat"),
  "num_train": 64,
  "num_test": 32,
  "image_size": 16,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return tfds_config(arg, "celeba_attributes", SMOKE_DATA, num_seeds=2, num_steps=1500)
