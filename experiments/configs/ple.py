r"""PLE (Tang et al., RecSys 2020): stacked CGC levels with a shared gate between levels.

  python -m experiments.train --config=experiments/configs/ple.py --workdir=/tmp/ple
  python -m experiments.train --config=experiments/configs/ple.py:smoke
  python -m experiments.train --config=experiments/configs/ple.py \
      --config.model_kwargs.num_levels=3

Trains ``ple`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import cgc
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = cgc.get_config()  # PLE is CGC with more levels: same experts, towers, baseline
  config.model = "ple"
  config.model_kwargs.num_levels = 2
  return apply_args(config, arg)
