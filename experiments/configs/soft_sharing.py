r"""Soft parameter sharing: one network per task + λ Σ_{t<t'} ‖θ^t − θ^t'‖.

  python -m experiments.train --config=experiments/configs/soft_sharing.py --workdir=/tmp/soft
  python -m experiments.train --config=experiments/configs/soft_sharing.py:smoke
  python -m experiments.train --config=experiments/configs/soft_sharing.py \
      --config.model_kwargs.soft_norm=mean --config.model_kwargs.soft_lambda=1e-2

Trains ``soft_sharing`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "soft_sharing"
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "mlp", "width": 64, "depth": 2, "soft_lambda": 1e-3, "soft_norm": "l2"}
  )
  return apply_args(config, arg)
