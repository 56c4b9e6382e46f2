r"""Sinusoid regression tasks whose label scales differ 1000× (the label-scaling tip).

  python -m experiments.train --config=experiments/configs/sinusoid.py --workdir=/tmp/sin
  python -m experiments.train --config=experiments/configs/sinusoid.py \
      --config.taskset_kwargs.standardize_labels=False   # watch the large-amplitude task dominate

With ``standardize_labels`` (default) every task's labels are standardised with its own
D^tr statistics, so the summed loss weighs tasks evenly; MSE is reported in original units.
"""

import ml_collections

from experiments.configs import default
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "sinusoid"
  config.taskset_kwargs = ml_collections.ConfigDict({"num_tasks": 5})
  config.model_kwargs = ml_collections.ConfigDict({"trunk": "mlp", "width": 64, "depth": 3})
  config.num_steps = 2000
  config.learning_rate = 3e-3
  return apply_args(config, arg)
