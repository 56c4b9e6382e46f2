"""N seeds in one program: each equals the single-seed run with that seed; CIs; NaN guard.

The property the seed axis must keep: ``num_seeds = N`` trains N independent runs, and run
s is the run ``seed = config.seed + s`` would train alone (to float tolerance: batched
reductions may round differently), for weightings, aggregators, K < T sampling and
rng-using methods alike.
"""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from experiments.configs import default
from mtl_jax import data, experiment, models
from mtl_jax.data.sampling import DeviceData
from mtl_jax.summary import ci95
from mtl_jax.train import make_chunk, make_optimizer, make_train_step

SMALL = dict(num_tasks=3, dim=8, n_train=64, n_test=32, num_sines=2)
CASES = [
  ("hard_sharing", "equal", 3),
  ("hard_sharing", "gradnorm", 3),
  ("hard_sharing", "rlw", 2),  # rng-using weighting, K < T
  ("hard_sharing", "pcgrad", 2),  # rng-using aggregator, K < T
  ("mmoe", "upgrad", 3),
  ("soft_sharing", "nash_mtl", 3),
]


def _step(model_name, method, k):
  ts = data.get_taskset("mmoe_regression", **SMALL)
  model = models.get(model_name, num_tasks=3, output_size=ts.output_size, width=16)
  init, step = make_train_step(
    model,
    DeviceData.from_taskset(ts),
    make_optimizer("adam", 1e-2),
    method,
    tasks_per_batch=k,
    batch_size=8,
  )
  x = jnp.asarray(ts.x_train[0, :2])

  def init_seed(seed):
    rng = jax.random.PRNGKey(seed)
    return init(jax.random.fold_in(rng, 1), model.init(jax.random.fold_in(rng, 0), x))

  return init_seed, step


@pytest.mark.parametrize("model_name,method,k", CASES)
def test_n_seeds_equal_n_single_seed_runs(model_name, method, k):
  init_seed, step = _step(model_name, method, k)
  seeds = jnp.arange(5, 8)
  stacked, m = make_chunk(step, 6, num_seeds=3)(jax.vmap(init_seed)(seeds))
  for s, seed in enumerate([5, 6, 7]):
    alone, m1 = make_chunk(step, 6)(init_seed(seed))
    chex.assert_trees_all_close(
      jax.tree.map(lambda v, s=s: v[s], stacked.params), alone.params, rtol=2e-5, atol=2e-6
    )
    np.testing.assert_allclose(m["loss_sum"][s], m1["loss_sum"], rtol=2e-5)
  # Different seeds really are different runs.
  assert not np.allclose(m["loss_sum"][0], m["loss_sum"][1])


def test_ci95_is_the_student_t_interval():
  v = [0.1, 0.4, 0.35, 0.2, 0.3]
  half = stats.t.ppf(0.975, 4) * np.std(v, ddof=1) / np.sqrt(5)
  np.testing.assert_allclose(ci95(v), [np.mean(v) - half, np.mean(v) + half])
  assert ci95([0.3]) is None


def _config(**over):
  config = default.get_config("smoke")
  config.num_steps, config.log_every, config.checkpoint_every = 6, 3, 3
  config.model_kwargs.width = 16
  config.num_seeds = 3
  for k, v in over.items():
    config[k] = v
  return config


def test_summary_reports_seeds_cis_and_paired_delta_m(tmp_path):
  summary = experiment.train_and_evaluate(_config(), str(tmp_path / "wd"), progress=False)
  assert summary["num_seeds"] == 3
  for task, metrics in summary["tasks"].items():
    per = summary["tasks_per_seed"][task]["accuracy"]
    assert len(per) == 3
    np.testing.assert_allclose(metrics["accuracy"], np.mean(per))
    lo, hi = summary["tasks_ci95"][task]["accuracy"]
    assert lo <= metrics["accuracy"] <= hi
    frac = summary["beats_baseline_fraction"][task]
    base = summary["baseline"]["tasks_per_seed"][task]["accuracy"]
    assert frac == np.mean([a > b for a, b in zip(per, base)])
  assert len(summary["delta_m_per_seed"]) == 3
  np.testing.assert_allclose(summary["delta_m"], np.mean(summary["delta_m_per_seed"]))
  assert "±" in summary["table"] and "95% CI" in summary["table"]
  with open(tmp_path / "wd" / "summary.json") as f:
    assert json.load(f)["delta_m_ci95"] == summary["delta_m_ci95"]
  with open(tmp_path / "wd" / "metrics.jsonl") as f:
    record = json.loads(f.readline())
  assert len(record["loss_per_seed"]) == 3 and len(record["losses_per_seed"]["rot0"]) == 3
  for name in ("curves.png", "test_metrics.png", "delta_m.png"):  # the plots, drawn
    assert os.path.getsize(tmp_path / "wd" / name) > 1000


def test_seeds_resume_from_checkpoint(tmp_path):
  workdir = str(tmp_path / "wd")
  full = experiment.train_and_evaluate(_config(baseline=""), workdir, progress=False)
  other = str(tmp_path / "wd2")
  experiment.train_and_evaluate(_config(baseline="", num_steps=3), other, progress=False)
  resumed = experiment.train_and_evaluate(_config(baseline=""), other, progress=False)
  assert resumed["tasks_per_seed"] == full["tasks_per_seed"]
  with open(os.path.join(other, "metrics.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == [3, 6]


def test_nan_guard_names_the_seed(tmp_path):
  config = _config(optimizer="sgd", learning_rate=1e38, baseline="")
  with pytest.raises(experiment.NonFiniteError, match=r"at step 1 \(seed 0, run 0 of 3\)"):
    experiment.train_and_evaluate(config, str(tmp_path / "wd"), progress=False)
