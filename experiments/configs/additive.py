r"""Additive conditioning: h W_h + b + z_i W_z (the same function class as concat).

  python -m experiments.train --config=experiments/configs/additive.py --workdir=/tmp/additive
  python -m experiments.train --config=experiments/configs/additive.py:smoke
  python -m experiments.train --config=experiments/configs/additive.py \
      --config.model_kwargs.condition_at=all

Trains ``additive`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "additive"
  config.model_kwargs = ml_collections.ConfigDict(
    {"width": 64, "depth": 2, "descriptor": "onehot", "condition_at": "input"}
  )
  return apply_args(config, arg)
