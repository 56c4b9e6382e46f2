"""TAG task grouping: exact selection vs brute force, the affinity step, planted clusters,
the seed study and the launcher."""

import importlib
import inspect
import itertools
import json
import pkgutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import grouping as grouping_config
from mtl_jax import build, grouping, loop
from mtl_jax.data.sampling import sample_batch
from mtl_jax.gradients import Objective, one_task_loss, per_task_grads


def brute_force(a: np.ndarray, k: int) -> float:
  """The best TAG objective over every set of at most k candidate groups."""
  t = a.shape[0]
  groups = [g for n in range(1, t + 1) for g in itertools.combinations(range(t), n)]
  # score[c, i]: task i's score in group c, by the definition (−inf when not a member).
  score = np.full((len(groups), t), -np.inf)
  for c, g in enumerate(groups):
    for i in g:
      score[c, i] = np.mean([a[j, i] for j in g if j != i]) if len(g) > 1 else grouping.ALONE
  best = -np.inf
  for n in range(1, k + 1):
    combos = np.array(list(itertools.combinations(range(len(groups)), n)))
    best = max(best, score[combos].max(1).mean(1).max())
  return float(best)


@pytest.mark.parametrize("t", [2, 3, 4, 5, 6, 7])
def test_exact_equals_brute_force(t):
  for seed in range(3 if t < 7 else 1):
    a = np.random.default_rng(seed + 10 * t).normal(size=(t, t))
    for k in (1, 2, 3):
      groups = grouping.select_groups(a, k, "exact")
      assert len(groups) <= k
      assert sorted(set(itertools.chain(*groups))) == list(range(t))  # every task covered
      assert groups == sorted(groups) and all(list(g) == sorted(g) for g in groups)
      assert grouping.grouping_score(a, groups) == pytest.approx(brute_force(a, k), abs=1e-9)


def test_hand_made_case():
  # Tasks {0, 1} and {2, 3} help each other and hurt across; task 4 helps everyone a bit.
  a = np.full((5, 5), -0.5)
  a[np.ix_([0, 1], [0, 1])] = a[np.ix_([2, 3], [2, 3])] = 0.6
  a[4, :] = 0.1
  a[:, 4] = [0.3, 0.0, 0.0, 0.0, 0.0]  # only task 0 helps task 4
  assert grouping.select_groups(a, 1) == [(0, 1, 2, 3, 4)]
  # k = 2: task 4 rides with task 0's pair (0.15 > 0 with 2 and 3, who keep 0.6 alone).
  assert grouping.select_groups(a, 2) == [(0, 1, 4), (2, 3)]
  assert grouping.select_groups(a, 3) == [(0, 1), (0, 4), (2, 3)]
  # Tasks 0..3 score mean(0.6, 0.1) in their group; task 4 max(mean(0.3, 0), mean(0, 0)).
  assert grouping.grouping_score(a, [(0, 1, 4), (2, 3, 4)]) == pytest.approx((4 * 0.35 + 0.15) / 5)
  assert grouping.serving_groups(a, [(0, 1, 4), (2, 3, 4)]) == [
    (0, 1, 4), (0, 1, 4), (2, 3, 4), (2, 3, 4), (0, 1, 4)
  ]  # fmt: skip
  assert grouping.grouping_score(a, [(0, 1)]) == -np.inf  # tasks 2..4 uncovered
  assert grouping.grouping_score(np.zeros((2, 2)), [(0,), (1,)]) == grouping.ALONE


def test_beam_is_valid_and_never_beats_exact():
  for seed in range(3):
    a = np.random.default_rng(seed).normal(size=(8, 8))
    for k in (2, 3):
      beam = grouping.select_groups(a, k, "beam")
      assert len(beam) <= k and sorted(set(itertools.chain(*beam))) == list(range(8))
      exact = grouping.grouping_score(a, grouping.select_groups(a, k, "exact"))
      assert grouping.grouping_score(a, beam) <= exact + 1e-12
  big = np.random.default_rng(0).normal(size=(16, 16))
  groups = grouping.select_groups(big, 3)  # auto: beam beyond 12 tasks
  assert len(groups) <= 3 and sorted(set(itertools.chain(*groups))) == list(range(16))


def test_select_groups_errors():
  with pytest.raises(ValueError, match="square"):
    grouping.select_groups(np.zeros((2, 3)), 1)
  with pytest.raises(ValueError, match="NaN"):
    grouping.select_groups(np.array([[0.0, np.nan], [0.0, 0.0]]), 1)
  with pytest.raises(ValueError, match="num_groups"):
    grouping.select_groups(np.zeros((3, 3)), 0)
  with pytest.raises(ValueError, match="unknown method"):
    grouping.select_groups(np.zeros((3, 3)), 1, "greedy")


def test_partitions_and_subset():
  assert len(grouping.partitions(range(4), 2)) == 7  # Stirling numbers S(4, 2), S(5, 3)
  assert len(grouping.partitions(range(5), 3)) == 25
  config = _tiny_config(3)
  ts = build.build_taskset(config)
  sub = grouping.subset_taskset(ts, [2, 0])
  assert sub.names == ["task_2", "task_0"]
  np.testing.assert_array_equal(sub.x_train[0], ts.x_train[2])
  np.testing.assert_array_equal(sub.label_std[1], ts.label_std[0])
  with pytest.raises(ValueError, match="distinct"):
    grouping.subset_taskset(ts, [0, 0])


def _tiny_config(t: int, steps: int = 20):
  config = grouping_config.get_config()
  config.taskset_kwargs.update({"num_tasks": t, "clusters": 1, "n_train": 64, "n_test": 32})
  config.num_steps, config.log_every, config.batch_size = steps, steps, 16
  return config


def test_affinity_run_leaves_training_bit_identical():
  config = _tiny_config(3)
  ts = build.build_taskset(config)
  aff = grouping.affinity_run(config, ts, every=3)
  plain = loop.train_run(build.prepare_run(config, ts), progress=False, evaluate=False)
  for x, y in zip(jax.tree.leaves(aff["state"]), jax.tree.leaves(plain["state"])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert aff["measured_steps"] == 7  # steps 0, 3, ..., 18
  assert aff["affinity"].shape == (3, 3) and np.all(np.isfinite(aff["affinity"]))
  np.testing.assert_allclose(np.diag(aff["cosine"]), 1.0, rtol=1e-5)
  config.tasks_per_batch = 2
  with pytest.raises(ValueError, match="every task every step"):
    grouping.affinity_run(config, ts)


def test_lookahead_matches_a_loop_over_tasks():
  config = _tiny_config(3)
  ts = build.build_taskset(config)
  run = build.prepare_run(config, ts)
  obj = Objective(run.model, run.data.kind, run.data.out_mask)
  opt = build.build_optimizer(config)
  params, opt_state = run.state.params, run.state.opt_state
  batch = sample_batch(jax.random.PRNGKey(1), run.data, 3, 16)
  z, cos = jax.jit(lambda *a: grouping.lookahead_affinity(obj, opt, *a))(params, opt_state, batch)
  _, g_sh, _ = jax.jit(lambda p, b: per_task_grads(obj, p, b))(params, batch)

  @jax.jit
  def reference(g_i):  # task i's lookahead, then each task j's loss ratio, one j at a time
    g = {"shared": g_i, "tasks": jax.tree.map(jnp.zeros_like, params["tasks"])}
    upd, _ = opt.update(g, opt_state, params)
    shared = jax.tree.map(lambda p, u: p + u, params["shared"], upd["shared"])
    out = []
    for j in range(3):
      task_j = jax.tree.map(lambda p, j=j: p[j], params["tasks"])
      after = one_task_loss(obj, shared, task_j, j, batch.x[j], batch.y[j])
      before = one_task_loss(obj, params["shared"], task_j, j, batch.x[j], batch.y[j])
      out.append(1 - after / before)
    return jnp.stack(out)

  for i in range(3):
    want = reference(jax.tree.map(lambda x, i=i: x[i], g_sh))
    np.testing.assert_allclose(
      np.asarray(z[i]), np.asarray(want), rtol=1e-4, atol=1e-6
    )  # 1 − ratio in float32
  assert float(z[0, 0]) > 0  # a task's own step lowers its loss
  np.testing.assert_allclose(np.asarray(cos), np.asarray(cos).T, atol=1e-6)


@pytest.mark.parametrize("estimator", ["affinity", "cosine"])
def test_planted_clusters_are_recovered(estimator):
  # 9 tasks, 3 planted clusters (experiments/configs/grouping.py), 2 seeds: ARI = 1.
  for seed in (0, 1):
    config = grouping_config.get_config()
    config.seed = config.taskset_kwargs.seed = seed
    config.num_steps, config.log_every = 800, 800
    aff = _affinity_cached(seed, config)
    groups = grouping.select_groups(aff[estimator], 3)
    ari = grouping.planted_ari(grouping.serving_groups(aff[estimator], groups), 3)
    assert ari == 1.0, (seed, groups)


_AFF = {}


def _affinity_cached(seed, config):
  if seed not in _AFF:
    _AFF[seed] = grouping.affinity_run(config, build.build_taskset(config), every=10)
  return _AFF[seed]


def test_run_procedure_writes_everything(tmp_path):
  config = _tiny_config(2, steps=20)
  config.grouping.update({"max_groups": 1, "num_groups": 1, "planted_clusters": 0, "num_seeds": 1})
  results = grouping.run_procedure(config, str(tmp_path))
  for name in ("affinity.json", "affinity.png", "results.json", "report.md"):
    assert (tmp_path / name).exists(), name
  doc = json.loads((tmp_path / "affinity.json").read_text())
  assert doc["tasks"] == ["task_0", "task_1"] and doc["estimator"] == "lookahead"
  assert np.asarray(doc["affinity"]).shape == (2, 2)
  assert set(results["options"]) == {"all", "alone", "tag", "exhaustive"}
  assert results["options"]["alone"]["delta_m"] == 0.0
  assert results["options"]["tag"]["groups"] == [[0, 1]]  # k = 1: everything together
  assert results["tag_by_k"]["1"]["groups"] == [[0, 1]]
  assert results["tag_by_k"]["1"]["delta_m"] == results["options"]["all"]["delta_m"]
  assert results["networks_trained"] == 3  # all (the affinity run) + each task alone
  assert "| task_0 | mse |" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
  "flag, message",
  [
    ("--config.grouping.estimator=magic", "error: unknown grouping.estimator"),
    ("--seeds=0", "error: grouping.num_seeds must be an integer >= 1"),
  ],
)
def test_launcher_bad_input_is_one_line(tmp_path, flag, message):
  cmd = [sys.executable, "-m", "experiments.grouping", f"--workdir={tmp_path / 'w'}", "--smoke"]
  out = subprocess.run(cmd + [flag], capture_output=True, text=True, timeout=120)
  assert out.returncode == 2, out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith(message)
  assert not (tmp_path / "w").exists()


def test_seed_configs_redraw_the_task_set():
  config = grouping_config.get_config()
  config.seed = 4
  cfgs = grouping.seed_configs(config, 3)
  assert cfgs[0] is config  # seed 0 is the run itself
  assert [c.seed for c in cfgs] == [4, 5, 6]
  assert [c.taskset_kwargs.seed for c in cfgs[1:]] == [1, 2]  # mmoe_regression's default 0, + s
  config.taskset_kwargs.seed = 10
  assert [c.taskset_kwargs.seed for c in grouping.seed_configs(config, 3)[1:]] == [11, 12]
  assert grouping.seed_configs(config, 1) == [config]


def test_seed_study_reports_ari_per_estimator():
  # Two seeds at smoke size: both estimators' groups and planted ARI per seed, the mean and
  # the 95% interval; the first seed's affinity run is the one passed in.
  config = _tiny_config(4, steps=30)
  config.taskset_kwargs.clusters = 2
  config.grouping.update({"num_seeds": 2, "planted_clusters": 2, "num_groups": 2})
  first = grouping.affinity_run(config, build.build_taskset(config), every=3)
  out = grouping.seed_study(config, first, 1.5)
  assert out["seeds"] == [0, 1] and out["data_seeds"] == [0, 1]
  assert out["affinity_run_seconds"][0] == 1.5 and len(out["affinity_run_seconds"]) == 2
  for est in grouping.ESTIMATORS:
    assert len(out["groups"][est]) == 2 and len(out["planted_ari"][est]) == 2
    sel = grouping.select_groups(grouping.estimator_matrix(first, est), 2)
    assert out["groups"][est][0] == [list(g) for g in sel]
    assert out["ari_mean"][est] == pytest.approx(np.mean(out["planted_ari"][est]))
    lo, hi = out["ari_ci95"][est]
    assert lo <= out["ari_mean"][est] <= hi


def test_grouping_settings_errors():
  config = _tiny_config(2)
  config.grouping.num_seeds = 0
  with pytest.raises(ValueError, match="grouping.num_seeds"):
    grouping.run_procedure(config, "/nonexistent/never-written")
  config.grouping.num_seeds = 1
  config.num_seeds = 3
  with pytest.raises(ValueError, match="num_seeds must be 1"):
    grouping.run_procedure(config, "/nonexistent/never-written")
  config.num_seeds = 1
  config.grouping.method = "greedy"
  with pytest.raises(ValueError, match="unknown grouping.method"):
    grouping.run_procedure(config, "/nonexistent/never-written")


def test_package_exports_and_function_sizes():
  # The contract: every public name from mtl_jax.grouping; no function over 80 lines.
  for name in grouping.__all__:
    assert hasattr(grouping, name), name
  assert list(inspect.signature(grouping.select_groups).parameters)[:2] == [
    "affinity",
    "num_groups",
  ]
  for mod in pkgutil.iter_modules(grouping.__path__):
    m = importlib.import_module(f"mtl_jax.grouping.{mod.name}")
    for _, f in inspect.getmembers(m, inspect.isfunction):
      if f.__module__ == m.__name__:
        assert len(inspect.getsource(f).splitlines()) <= 80, f"{m.__name__}.{f.__name__}"
