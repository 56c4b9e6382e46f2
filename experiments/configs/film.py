r"""FiLM conditioning (Perez et al., AAAI 2018): γ(z_i) ⊙ a + β(z_i) at every layer.

  python -m experiments.train --config=experiments/configs/film.py --workdir=/tmp/film
  python -m experiments.train --config=experiments/configs/film.py:smoke
  python -m experiments.train --config=experiments/configs/film.py \
      --config.model_kwargs.descriptor=embedding --config.model_kwargs.embed_dim=4

Trains ``film`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "film"
  config.model_kwargs = ml_collections.ConfigDict(
    {"width": 64, "depth": 2, "descriptor": "onehot", "condition_at": "all"}
  )
  return apply_args(config, arg)
