r"""Cross-stitch networks (Misra et al., CVPR 2016): T trunks mixed by learned α.

  python -m experiments.train --config=experiments/configs/cross_stitch.py --workdir=/tmp/xs
  python -m experiments.train --config=experiments/configs/cross_stitch.py:smoke
  python -m experiments.train --config=experiments/configs/cross_stitch.py \
      --config.model_kwargs.stitch_self=0.5

Trains ``cross_stitch`` on the MMoE synthetic regression tasks (``synthetic.py``'s task set) and
compares it with the independent baseline (Δm%). ``experiments/compare_architectures.py``
runs every architecture side by side.
"""

import ml_collections

from experiments.configs import synthetic
from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = synthetic.get_config()
  config.model = "cross_stitch"
  config.model_kwargs = ml_collections.ConfigDict(
    {"trunk": "mlp", "width": 64, "depth": 2, "stitch_self": 0.9}
  )
  return apply_args(config, arg)
