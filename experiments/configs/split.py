r"""The sharing dial: share the first num_shared trunk layers, the rest per task.

  python -m experiments.train --config=experiments/configs/split.py --workdir=/tmp/split
  python -m experiments.train --config=experiments/configs/split.py:smoke
  python -m experiments.train --config=experiments/configs/split.py \
      --config.model_kwargs.num_shared=2   # 0 = independent, depth = hard sharing

Trains ``split`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "split"
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "mlp", "width": 64, "depth": 3, "num_shared": 1}
  )
  return apply_args(config, arg)
