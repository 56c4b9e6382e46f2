r"""Default job: hard sharing vs independent networks on rotated digits (offline).

  python -m experiments.train --config=experiments/configs/default.py --workdir=/tmp/mtl
  python -m experiments.train --config=experiments/configs/default.py:smoke

Four tasks classify sklearn's bundled digits rotated by 0/90/180/270 degrees (different
p_i(x)). The summary compares per-task test accuracy and reports Δm%.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.taskset = "rotated_digits"
  config.taskset_kwargs = ml_collections.ConfigDict()
  config.num_tasks = 0              # 0: whatever the task set has; else checked against it
  config.model = "hard_sharing"
  config.model_kwargs = ml_collections.ConfigDict({"trunk": "mlp", "width": 128, "depth": 2})
  config.method = "equal"           # a loss weighting or a gradient aggregator
  config.method_kwargs = ml_collections.ConfigDict()
  config.baseline = "independent"   # "" to skip the single-task comparison
  config.baseline_method = "equal"
  config.num_steps = 1500
  config.tasks_per_batch = 0        # K; 0 means every task every step (K = T)
  config.batch_size = 32            # examples per sampled task
  config.optimizer = "adam"
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.clip_norm = 0.0
  config.schedule = "constant"
  config.log_every = 100
  return apply_args(config, arg)


def apply_args(config: ml_collections.ConfigDict, arg: str | None):
  """Handles the ``:smoke`` argument (a run of a few seconds), shared by every config."""
  args = [a for a in (arg or "").split(",") if a]
  for a in args:
    if a == "smoke":
      config.num_steps = min(config.num_steps, 30)
      config.log_every = 10
      config.batch_size = min(config.batch_size, 16)
    else:
      raise ValueError(f"unknown config argument {a!r}; valid: smoke")
  return config
