r"""MultiMNIST: two overlaid MNIST digits, tasks ``left`` and ``right`` (prepared TFDS data).

  python -m experiments.train --config=experiments/configs/multi_mnist.py \
    --config.data_dir=/data/tfds --workdir=/tmp/multi_mnist

Reads TFDS ``mnist`` from ``--config.data_dir`` (default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``), never downloading it: prepare it first (docs/data.md). Both tasks
label the same images (shared inputs); a conv trunk is shared, one head per task, against
independent conv networks. ``:smoke`` shrinks the data too (64 / 32 images).
"""

import ml_collections

from experiments.configs import default
from experiments.configs.common import apply_args
from mtl_jax.data.tfds_sets import default_data_dir

SMOKE_DATA = {"num_train": 64, "num_test": 32}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "multi_mnist"
  smoke = "smoke" in (arg or "").split(",")
  config.taskset_kwargs = ml_collections.ConfigDict(SMOKE_DATA if smoke else {})
  config.data_dir = default_data_dir()
  width, depth = (8, 2) if smoke else (32, 2)
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "patch_conv", "width": width, "depth": depth}
  )
  config.num_seeds = 3
  config.num_steps = 1500
  config.batch_size = 64
  return apply_args(config, arg)
