r"""Multi-label learning on one p(x): digit identity, parity, ≥5, prime, and ink (regression).

  python -m experiments.train --config=experiments/configs/digit_attributes.py --workdir=/tmp/attr
  python -m experiments.train --config=experiments/configs/digit_attributes.py:method=mgda
  python -m experiments.train --config=experiments/configs/digit_attributes.py:smoke \
      --config.taskset_kwargs.missing_rate=0.3     # 30% of the labels missing

All tasks label the same images (mixed softmax / sigmoid / regression labels); gradient
aggregators get per-task gradients from one forward pass and vmapped VJPs.
"""

import ml_collections

from experiments.configs import default
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "digit_attributes"
  config.taskset_kwargs = ml_collections.ConfigDict({"include_regression": True})
  config.num_steps = 1500
  return apply_args(config, arg)
