r"""Overfitting → share more: train/test gap vs shared layers × examples per task.

  python -m experiments.overfitting --workdir=workdirs/overfitting
  python -m experiments.overfitting --smoke --workdir=/tmp/of

MMoE-style synthetic regression with 25, 100 or 400 training examples per task; ``split``
shares the first k of 3 trunk layers (k = 0: independent, k = 3: hard sharing). With few
examples, sharing more should narrow the gap between training and test error.
Writes results.json, report.md, test_mse_vs_n_train.png and gap_vs_n_train.png. From
Python (a notebook): ``run(workdir, smoke=True)``.
"""

from absl import app, flags

from experiments import cli
from experiments.configs import synthetic
from mtl_jax import lecture

FLAGS = flags.FLAGS
SIZES = (25, 100, 400)


def define_flags() -> None:
  """The command line's flags (defined when run as a script, so modules import together)."""
  flags.DEFINE_string("workdir", "workdirs/overfitting", "Where results go.")
  flags.DEFINE_bool("smoke", False, "Tiny sizes: two data sizes, k in {0, 3}, two seeds.")
  flags.DEFINE_integer("seeds", 8, "Seeds per arm (one compiled program each).")
  flags.DEFINE_integer("num_steps", 1500, "Training steps per arm.")
  flags.DEFINE_list("sizes", [str(n) for n in SIZES], "Training examples per task.")


def run(
  workdir: str, *, smoke: bool = False, seeds: int = 8, num_steps: int = 1500, sizes=SIZES
) -> dict:
  """The experiment (what the script runs): ``{"rows": [...]}``, files in ``workdir``.

  ``smoke``: 20 steps, two seeds, the smallest and largest size, k in {0, 3}.
  """
  base = synthetic.get_config()
  base.model_kwargs.depth = 3
  base.num_steps, base.num_seeds = num_steps, seeds
  shared, sizes = [0, 1, 2, 3], [int(n) for n in sizes]
  if smoke:
    base.num_steps, base.num_seeds, base.log_every = 20, 2, 20
    base.taskset_kwargs.update({"n_test": 64, "dim": 8})
    shared, sizes = [0, 3], sizes[:1] + sizes[-1:]
  return lecture.overfitting(base, shared, sizes, workdir)


def main(argv):
  del argv
  try:
    run(
      FLAGS.workdir,
      smoke=FLAGS.smoke,
      seeds=FLAGS.seeds,
      num_steps=FLAGS.num_steps,
      sizes=FLAGS.sizes,
    )
  except ValueError as e:
    cli.fail(e)


if __name__ == "__main__":
  define_flags()
  app.run(main)
