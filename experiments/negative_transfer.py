r"""Negative transfer: Δm% against independent networks as the tasks grow less related.

  python -m experiments.negative_transfer --workdir=workdirs/negative_transfer
  python -m experiments.negative_transfer --smoke --workdir=/tmp/nt

MMoE-style synthetic regression (T tasks whose weight vectors have pairwise cosine
``correlation``) from unrelated (0) to identical (1) tasks. Every architecture — hard
sharing, split at k = 1..depth−1 shared layers, soft sharing over a λ grid, MMoE, PLE,
cross-stitch — is sized to the same total parameter count as the independent networks
(±10%, printed) and trained on the same seeds; Δm% is paired per seed against independent.
Writes results.json, report.md and delta_m_vs_correlation.png into the workdir. From
Python (a notebook): ``run(workdir, smoke=True)``.
"""

from absl import app, flags

from experiments import cli
from experiments.configs import synthetic
from mtl_jax import lecture

FLAGS = flags.FLAGS
DEPTH = 3
CORRELATIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
ARMS = [("hard_sharing", {})]
ARMS += [(f"split_k{k}", {"model": "split", "num_shared": k}) for k in range(1, DEPTH)]
ARMS += [
  (f"soft_sharing_l{lam:g}", {"model": "soft_sharing", "soft_lambda": lam})
  for lam in (1e-4, 1e-3, 1e-2)
]
ARMS += [("mmoe", {}), ("ple", {}), ("cross_stitch", {})]
SMOKE_ARMS = ARMS[:2]  # hard sharing and split at k = 1


def define_flags() -> None:
  """The command line's flags (defined when run as a script, so modules import together)."""
  flags.DEFINE_string("workdir", "workdirs/negative_transfer", "Where results go.")
  flags.DEFINE_bool("smoke", False, "Tiny sizes: two correlations, two arms, two seeds.")
  flags.DEFINE_integer("seeds", 8, "Seeds per arm (one compiled program each).")
  flags.DEFINE_integer("num_steps", 1500, "Training steps per arm.")
  flags.DEFINE_list("correlations", [f"{c:g}" for c in CORRELATIONS], "Task correlations.")
  flags.DEFINE_integer("num_tasks", 4, "Tasks T.")


def run(
  workdir: str,
  *,
  smoke: bool = False,
  seeds: int = 8,
  num_steps: int = 1500,
  correlations=CORRELATIONS,
  num_tasks: int = 4,
  arms: list | None = None,
) -> dict:
  """The experiment (what the script runs): ``{"rows": [...]}``, files in ``workdir``.

  ``smoke``: 20 steps, two seeds, tiny data, the first and last correlation and
  :data:`SMOKE_ARMS` (unless ``arms`` is given).
  """
  base = synthetic.get_config()
  base.taskset_kwargs.num_tasks = num_tasks
  base.model_kwargs.depth = DEPTH
  base.num_steps, base.num_seeds = num_steps, seeds
  correlations = [float(c) for c in correlations]
  if smoke:
    base.num_steps, base.num_seeds, base.log_every = 20, 2, 20
    base.taskset_kwargs.update({"n_train": 64, "n_test": 64, "dim": 8})
    correlations = correlations[:1] + correlations[-1:]
  arms = arms if arms is not None else (SMOKE_ARMS if smoke else ARMS)
  return lecture.negative_transfer(base, arms, correlations, workdir)


def main(argv):
  del argv
  try:
    run(
      FLAGS.workdir,
      smoke=FLAGS.smoke,
      seeds=FLAGS.seeds,
      num_steps=FLAGS.num_steps,
      correlations=FLAGS.correlations,
      num_tasks=FLAGS.num_tasks,
    )
  except ValueError as e:
    cli.fail(e)


if __name__ == "__main__":
  define_flags()
  app.run(main)
