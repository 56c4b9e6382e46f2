r"""The label-scaling tip: regression tasks 1000× apart, with and without standardising.

  python -m experiments.label_scaling --workdir=workdirs/label_scaling
  python -m experiments.label_scaling --smoke --workdir=/tmp/ls

Five sinusoid tasks whose amplitudes are log-spaced from 0.1 to 100 share one network and
the summed MSE. Raw labels let the largest task dominate the loss (the small ones are
barely fitted); standardising each task's labels with D^tr statistics puts them on one
scale. Writes results.json, report.md and label_scaling.png (per-task test R²).
"""

from absl import app, flags

from experiments import cli
from experiments.configs import sinusoid
from mtl_jax import lecture

flags.DEFINE_string("workdir", "workdirs/label_scaling", "Where results go.")
flags.DEFINE_bool("smoke", False, "Tiny sizes: a few steps, two seeds.")
flags.DEFINE_integer("seeds", 8, "Seeds (one compiled program per setting).")
flags.DEFINE_integer("num_steps", 2000, "Training steps.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  base = sinusoid.get_config()
  base.num_steps, base.num_seeds = FLAGS.num_steps, FLAGS.seeds
  if FLAGS.smoke:
    base.num_steps, base.num_seeds, base.log_every = 20, 2, 20
  try:
    lecture.label_scaling(base, FLAGS.workdir)
  except ValueError as e:
    cli.fail(e)


if __name__ == "__main__":
  app.run(main)
