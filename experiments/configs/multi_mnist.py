r"""MultiMNIST: two overlaid MNIST digits, tasks ``left`` and ``right`` (prepared TFDS data).

  python -m experiments.train --config=experiments/configs/multi_mnist.py \
    --config.data_dir=/data/tfds --workdir=/tmp/multi_mnist

Reads TFDS ``mnist`` from ``--config.data_dir`` (default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``), never downloading it: prepare it first (docs/data.md). Both tasks
label the same images (shared inputs); a conv trunk is shared, one head per task, against
independent conv networks. ``:smoke`` shrinks the data too (64 / 32 images).
"""

import ml_collections

from experiments.configs.common import tfds_config

SMOKE_DATA = {"num_train": 64, "num_test": 32}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return tfds_config(
    arg, "multi_mnist", SMOKE_DATA, depth=2, num_seeds=3, num_steps=1500, batch_size=64
  )
