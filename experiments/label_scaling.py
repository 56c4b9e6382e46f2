r"""The label-scaling tip: regression tasks 1000× apart, with and without standardising.

  python -m experiments.label_scaling --workdir=workdirs/label_scaling
  python -m experiments.label_scaling --smoke --workdir=/tmp/ls

Five sinusoid tasks whose amplitudes are log-spaced from 0.1 to 100 share one network and
the summed MSE. Raw labels let the largest task dominate the loss (the small ones are
barely fitted); standardising each task's labels with D^tr statistics puts them on one
scale. Writes results.json, report.md and label_scaling.png (per-task test R²). From
Python (a notebook): ``run(workdir, smoke=True)``.
"""

from absl import app, flags

from experiments import cli
from experiments.configs import sinusoid
from mtl_jax import lecture

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined when run as a script, so modules import together)."""
  flags.DEFINE_string("workdir", "workdirs/label_scaling", "Where results go.")
  flags.DEFINE_bool("smoke", False, "Tiny sizes: a few steps, two seeds.")
  flags.DEFINE_integer("seeds", 8, "Seeds (one compiled program per setting).")
  flags.DEFINE_integer("num_steps", 2000, "Training steps.")


def run(workdir: str, *, smoke: bool = False, seeds: int = 8, num_steps: int = 2000) -> dict:
  """The experiment (what the script runs): ``{"rows": [...]}``, files in ``workdir``.

  ``smoke``: 20 steps, two seeds.
  """
  base = sinusoid.get_config()
  base.num_steps, base.num_seeds = num_steps, seeds
  if smoke:
    base.num_steps, base.num_seeds, base.log_every = 20, 2, 20
  return lecture.label_scaling(base, workdir)


def main(argv):
  del argv
  try:
    run(FLAGS.workdir, smoke=FLAGS.smoke, seeds=FLAGS.seeds, num_steps=FLAGS.num_steps)
  except ValueError as e:
    cli.fail(e)


if __name__ == "__main__":
  define_flags()
  app.run(main)
