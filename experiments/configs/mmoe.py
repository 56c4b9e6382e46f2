r"""MMoE (Ma et al., KDD 2018): shared experts, one softmax gate per task.

  python -m experiments.train --config=experiments/configs/mmoe.py --workdir=/tmp/mmoe
  python -m experiments.train --config=experiments/configs/mmoe.py:smoke
  python -m experiments.train --config=experiments/configs/mmoe.py \
      --config.taskset_kwargs.correlation=0.2 --config.model_kwargs.num_experts=8

Trains ``mmoe`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "mmoe"
  config.model_kwargs = ml_collections.ConfigDict(
    {"num_experts": 4, "width": 32, "depth": 1, "tower_width": 16, "tower_depth": 1}
  )
  # The independent baseline keeps synthetic.py's network size, not the experts' size.
  config.baseline_kwargs = ml_collections.ConfigDict({"width": 64, "depth": 2})
  return apply_args(config, arg)
