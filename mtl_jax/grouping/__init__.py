"""Which tasks to train together: TAG inter-task affinity and group selection.

Fifty et al. (2021), "Efficiently Identifying Task Groupings for Multi-Task Learning".
The package by owner:

* :mod:`~mtl_jax.grouping.affinity` — affinity in one run: every ``every`` steps of an
  ordinary all-task run, each task i's lookahead step of θ^sh (the run's own optax
  update) and every task j's loss on the same batch,
  ``Z[i, j] = 1 − L_j(θ^sh_{+i}, θ^j) / L_j(θ^sh, θ^j)``, all T lookaheads one ``vmap``
  inside the compiled step; the gradient cosine similarity alongside (TAG's "CS").
* :mod:`~mtl_jax.grouping.objective`, :mod:`~mtl_jax.grouping.exact`,
  :mod:`~mtl_jax.grouping.beam`, :mod:`~mtl_jax.grouping.selection` — TAG's objective and
  :func:`select_groups`: at most ``num_groups`` (possibly overlapping) groups maximising
  it, exactly (dynamic programme over partitions, up to 14 tasks) or by beam search plus
  local search for many tasks.
* :mod:`~mtl_jax.grouping.procedure`, :mod:`~mtl_jax.grouping.report` — the whole
  procedure (:func:`run_procedure`): affinities, groups for k = 1..K, one network per
  group, per-task test metrics against all together, every task alone and (small T) every
  partition; the seed study of planted-cluster recovery; the files it writes.

The matrix contract: ``affinity[i, j] = Z_{i→j}``, the effect of task i's step on task j's
loss (positive: i's step lowered j's loss).
"""

from mtl_jax.grouping.affinity import (
  ESTIMATORS,
  LOOKAHEADS,
  AffinityState,
  affinity_run,
  affinity_step,
  estimator_matrix,
  lookahead_affinity,
  make_affinity_step,
)
from mtl_jax.grouping.objective import ALONE, grouping_score, serving_groups
from mtl_jax.grouping.procedure import (
  partitions,
  run_procedure,
  seed_configs,
  seed_study,
  subset_taskset,
)
from mtl_jax.grouping.report import planted_ari, report_table, write_affinity
from mtl_jax.grouping.selection import EXACT_LIMIT, EXACT_MAX_TASKS, METHODS, select_groups

__all__ = [
  "ALONE",
  "AffinityState",
  "ESTIMATORS",
  "EXACT_LIMIT",
  "EXACT_MAX_TASKS",
  "LOOKAHEADS",
  "METHODS",
  "affinity_run",
  "affinity_step",
  "estimator_matrix",
  "grouping_score",
  "lookahead_affinity",
  "make_affinity_step",
  "partitions",
  "planted_ari",
  "report_table",
  "run_procedure",
  "seed_configs",
  "seed_study",
  "select_groups",
  "serving_groups",
  "subset_taskset",
  "write_affinity",
]
