r"""MMoE-style synthetic regression (Ma et al., KDD 2018): every architecture on one task set.

  python -m experiments.train --config=experiments/configs/synthetic.py --workdir=/tmp/syn
  python -m experiments.train --config=experiments/configs/synthetic.py:smoke
  python -m experiments.train --config=experiments/configs/synthetic.py \
      --config.taskset_kwargs.correlation=0.0   # unrelated tasks: expect negative transfer
  python -m experiments.train --config=experiments/configs/synthetic.py:model=mmoe,smoke \
      --config.model_kwargs.num_experts=8

T regression tasks whose weight vectors have a chosen pairwise cosine correlation; lower
correlation means less to gain (or something to lose) from sharing. ``model=NAME`` picks
any architecture (``mtl_jax.models.names()``) with its own defaults plus the settings in
:data:`VARIANTS` below; the baseline is always the independent networks of this file's
base size (64 x 2), so Δm% compares like with like.
"""

import ml_collections

from experiments.configs import default
from experiments.configs.common import apply_args

# Experts models: small experts and towers (their builders' defaults, not the 64 x 2 MLP
# this file gives hard sharing), against the same 64 x 2 independent baseline.
_EXPERTS = {
  "model_kwargs": {"width": 32, "depth": 1},
  "baseline_kwargs": {"width": 64, "depth": 2},
}
# Per-architecture settings on this task set (what differs from the builder's defaults
# and the base model_kwargs), applied by ``model=NAME``.
VARIANTS = {
  "split": {"model_kwargs": {"depth": 3, "num_shared": 1}},  # 0 = independent, 3 = hard
  "film": {"model_kwargs": {"condition_at": "all"}},
  "multiplicative": {"model_kwargs": {"condition_at": "all"}},
  "mmoe": _EXPERTS,
  "omoe": _EXPERTS,
  "dselect_k": _EXPERTS,
  "cgc": _EXPERTS,
  "ple": _EXPERTS,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.taskset = "mmoe_regression"
  config.taskset_kwargs = ml_collections.ConfigDict(
    {"num_tasks": 4, "correlation": 0.9, "dim": 16, "n_train": 200, "n_test": 1000}
  )
  config.model_kwargs = ml_collections.ConfigDict({"trunk": "mlp", "width": 64, "depth": 2})
  config.num_steps = 1000
  config.learning_rate = 1e-3
  return apply_args(config, arg, VARIANTS)
