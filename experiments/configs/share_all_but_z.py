r"""Share everything but z_i: one network and one head; z_i is all that differs.

  python -m experiments.train --config=experiments/configs/share_all_but_z.py --workdir=/tmp/sabz
  python -m experiments.train --config=experiments/configs/share_all_but_z.py:smoke
  python -m experiments.train --config=experiments/configs/share_all_but_z.py \
      --config.model_kwargs.conditioning=film --config.model_kwargs.condition_at=all

Trains ``share_all_but_z`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "share_all_but_z"
  config.model_kwargs = ml_collections.ConfigDict(
    {
      "width": 64,
      "depth": 2,
      "conditioning": "concat",
      "descriptor": "onehot",
      "condition_at": "input",
    }
  )
  return apply_args(config, arg)
