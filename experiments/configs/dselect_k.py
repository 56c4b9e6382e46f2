r"""DSelect-k (Hazimeh et al., NeurIPS 2021): shared experts, one DSelect-k gate per task.

  python -m experiments.train --config=experiments/configs/dselect_k.py --workdir=/tmp/dsk
  python -m experiments.train --config=experiments/configs/dselect_k.py:smoke
  python -m experiments.train --config=experiments/configs/dselect_k.py \
      --config.model_kwargs.num_experts=8 --config.model_kwargs.k=2

Trains ``dselect_k`` (static gates: each task selects, after its smooth-steps saturate, at
most k of the shared experts) on the MMoE synthetic regression tasks (``synthetic.py``'s
task set) and compares it with the independent baseline (Δm%).
"""

import ml_collections

from experiments.configs import mmoe
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = mmoe.get_config()  # MMoE's experts, towers and baseline; only the gate differs
  config.model = "dselect_k"
  config.model_kwargs.k = 2
  config.model_kwargs.gamma = 1.0
  config.model_kwargs.per_example = False
  return apply_args(config, arg)
