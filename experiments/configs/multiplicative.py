r"""Multiplicative conditioning: the pre-activation gated by z_i W_z + b_z.

  python -m experiments.train --config=experiments/configs/multiplicative.py --workdir=/tmp/mult
  python -m experiments.train --config=experiments/configs/multiplicative.py:smoke
  python -m experiments.train --config=experiments/configs/multiplicative.py \
      --config.model_kwargs.descriptor=embedding

Trains ``multiplicative`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "multiplicative"
  config.model_kwargs = ml_collections.ConfigDict(
    {"width": 64, "depth": 2, "descriptor": "onehot", "condition_at": "all"}
  )
  return apply_args(config, arg)
