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

from experiments.configs import default
from experiments.configs.common import apply_args
from mtl_jax.data.tfds_sets import default_data_dir

SMOKE_DATA = {
  "attributes": ("Smiling", "Male", "Young", "Eyeglasses", "Wearing_Hat"),
  "num_train": 64,
  "num_test": 32,
  "image_size": 16,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "celeba_attributes"
  smoke = "smoke" in (arg or "").split(",")
  config.taskset_kwargs = ml_collections.ConfigDict(SMOKE_DATA if smoke else {})
  config.data_dir = default_data_dir()
  width, depth = (8, 2) if smoke else (32, 3)
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "patch_conv", "width": width, "depth": depth}
  )
  config.num_seeds = 2
  config.num_steps = 1500
  return apply_args(config, arg)
