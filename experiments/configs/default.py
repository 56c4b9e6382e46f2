r"""Default job: hard sharing vs independent networks on rotated digits (offline).

  python -m experiments.train --config=experiments/configs/default.py --workdir=/tmp/mtl
  python -m experiments.train --config=experiments/configs/default.py:smoke

Four tasks classify sklearn's bundled digits rotated by 0/90/180/270 degrees (different
p_i(x)). The summary compares per-task test accuracy and reports Δm%.
"""

import ml_collections

from experiments.configs.common import apply_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Independent training runs (seeds seed, seed+1, ...) vmapped in one program; the
  # baseline trains on the same seeds, and the summary reports means with 95% CIs.
  config.num_seeds = 8  # the default job: ~1 min on 2 CPU cores
  # True: seed s also trains on its own task set (taskset_kwargs.seed + s), so the CIs
  # cover the data draw too; False: every seed on the same data.
  config.resample_data = False
  config.taskset = "rotated_digits"
  config.taskset_kwargs = ml_collections.ConfigDict()
  config.num_tasks = 0  # 0: whatever the task set has; else checked against it
  config.model = "hard_sharing"
  config.model_kwargs = ml_collections.ConfigDict({"trunk": "mlp", "width": 128, "depth": 2})
  config.method = "equal"  # a loss weighting or a gradient aggregator
  config.method_kwargs = ml_collections.ConfigDict()
  config.baseline = "independent"  # "" to skip the single-task comparison
  config.baseline_method = "equal"
  config.baseline_kwargs = ml_collections.ConfigDict()  # baseline model kwargs (on top of
  # the model_kwargs it understands, e.g. trunk/width/depth)
  config.num_steps = 1500
  config.tasks_per_batch = 0  # K; 0 means every task every step (K = T)
  config.batch_size = 32  # examples per sampled task
  config.optimizer = "adam"
  config.learning_rate = 1e-3
  config.weight_decay = 0.0
  config.clip_norm = 0.0
  config.schedule = "constant"
  # Where the training data live: "device" (the padded arrays on the device, sampled
  # there), "stream" (batches fed from host memory, see docs/data.md) or "auto": stream
  # exactly when the padded train+test arrays exceed device_data_budget_mb (MiB).
  config.data_path = "auto"
  config.device_data_budget_mb = 4096.0
  config.log_every = 100
  config.checkpoint_every = 500  # steps between checkpoints (at chunk ends); 0: only at the end
  # Device mesh ("data", "task"): -1 takes the remaining devices; 1 x 1 is single-device.
  config.mesh = ml_collections.ConfigDict({"data": -1, "task": 1})
  config.distributed = False  # multi-host: jax.distributed.initialize() first
  return apply_args(config, arg)
