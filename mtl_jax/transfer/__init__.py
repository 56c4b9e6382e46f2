"""Transfer learning and fine-tuning: a source run's θ adapted to a held-out target task.

The lecture's transfer setting: solve source task(s) 𝒯_a, then solve 𝒯_b by fine-tuning
φ ← θ − α∇_θ L(θ, D^tr_b) *without access to D_a*. Modules:

* :mod:`~mtl_jax.transfer.source` — θ from any run's orbax checkpoint (an
  ``experiments.train`` workdir included), the target model and the copied layers;
* :mod:`~mtl_jax.transfer.optim` — the practices as optax: per-level labels for
  ``optax.partition``, layer-wise rates, freezing (``set_to_zero`` + ``stop_gradient``),
  gradual unfreezing on a traced schedule;
* :mod:`~mtl_jax.transfer.runner` — many fine-tuning runs vmapped in one program;
* :mod:`~mtl_jax.transfer.splits` — n examples per class, k folds, held-out task sets;
* :mod:`~mtl_jax.transfer.arms`, :mod:`~mtl_jax.transfer.evaluate`,
  :mod:`~mtl_jax.transfer.study` — the adaptation curve, the practices, the CV, and the
  whole study behind ``python -m experiments.finetune`` (see ``docs/transfer.md``).

``summary.json["curve"][ARM][N] = {"mean", "ci95": [lo, hi]}`` with ARM in ``scratch``,
``stl_pretrained``, ``mtl_pretrained``, ``linear_probe`` and N the number of target
training examples *per class* as a string (the largest, "all", is the actual number: the
smallest class count of D^tr_b; ``summary["n_per_class"][N]["all"]`` marks it).
"""

from mtl_jax.transfer.optim import (
  FROZEN,
  NEVER,
  Hparams,
  effective_params,
  gated,
  hparams,
  labels,
  level_rates,
  levels,
  num_levels,
  optimizer,
  schedule,
)
from mtl_jax.transfer.runner import Finetuner, Runs, Target, make_runs
from mtl_jax.transfer.source import (
  Source,
  SourceError,
  check_fits,
  load_source,
  target_model,
  transplant,
)
from mtl_jax.transfer.study import run_study

__all__ = [
  "FROZEN",
  "NEVER",
  "Finetuner",
  "Hparams",
  "Runs",
  "Source",
  "SourceError",
  "Target",
  "check_fits",
  "effective_params",
  "gated",
  "hparams",
  "labels",
  "level_rates",
  "levels",
  "load_source",
  "make_runs",
  "num_levels",
  "optimizer",
  "run_study",
  "schedule",
  "target_model",
  "transplant",
]
