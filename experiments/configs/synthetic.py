r"""Hard sharing vs independent on MMoE-style synthetic regression (Ma et al., KDD 2018).

  python -m experiments.train --config=experiments/configs/synthetic.py --workdir=/tmp/syn
  python -m experiments.train --config=experiments/configs/synthetic.py:smoke
  python -m experiments.train --config=experiments/configs/synthetic.py \
      --config.taskset_kwargs.correlation=0.0   # unrelated tasks: expect negative transfer

T regression tasks whose weight vectors have a chosen pairwise cosine correlation;
lower correlation means less to gain (or something to lose) from sharing.
"""

import ml_collections

from experiments.configs import default
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "mmoe_regression"
  config.taskset_kwargs = ml_collections.ConfigDict(
    {"num_tasks": 4, "correlation": 0.9, "dim": 16, "n_train": 200, "n_test": 1000}
  )
  config.model_kwargs = ml_collections.ConfigDict({"trunk": "mlp", "width": 64, "depth": 2})
  config.num_steps = 1000
  config.learning_rate = 1e-3
  return apply_args(config, arg)
