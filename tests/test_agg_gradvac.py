"""Known answers for ``gradvac`` (Gradient Vaccine, Wang et al. 2021)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax import aggregators


def _reference(g, phi_hat, beta=0.5):
  """Algorithm 1 on the vectors themselves, float64, partners in the order 0..T-1."""
  t = len(g)
  phi_hat = phi_hat.copy()
  out = []
  for i in range(t):
    gi = g[i].copy()
    for j in range(t):
      if j == i:
        continue
      nj = np.linalg.norm(g[j])
      phi = gi @ g[j] / (np.linalg.norm(gi) * nj)
      target = phi_hat[i, j]
      if phi < target:
        w = np.linalg.norm(gi) * (target * np.sqrt(1 - phi**2) - phi * np.sqrt(1 - target**2))
        gi = gi + w / (nj * np.sqrt(1 - target**2)) * g[j]
      phi_hat[i, j] = (1 - beta) * target + beta * phi
    out.append(gi)
  return np.sum(out, axis=0), phi_hat


@functools.cache
def _agg(**hp):
  """One aggregator and its jitted update per hyperparameters (one compile per shape)."""
  agg = aggregators.get("gradvac", **hp)
  return agg, jax.jit(agg.update)


def _run(agg_and_update, gs, **extra):
  agg, update = agg_and_update
  state = agg.init(None)
  outs = []
  for g in gs:
    out, state = update(jnp.asarray(g, jnp.float32), state, **extra)
    outs.append(np.asarray(out, np.float64))
  return outs, state


def test_first_two_steps_by_hand():
  g = np.array([[1.0, 0.0], [-1.0, 1.0]])
  agg = _agg(shuffle=False)
  (first, second), state = _run(agg, [g, g])
  # Targets start at 0: g1 + ½ g2 = (½, ½) and g2 + g1 = (0, 1), PCGrad's answer.
  chex.assert_trees_all_close(first, np.array([0.5, 1.5]), atol=1e-6)
  # Then φ̂ = ½·0 + ½·cos = -1/(2√2), and the second step lifts each cosine to it.
  expected, phi_hat = _reference(g, np.full((2, 2), -0.5 / np.sqrt(2.0)))
  chex.assert_trees_all_close(second, expected, rtol=1e-5)
  np.testing.assert_allclose(
    state.phi_hat[:2, :2][~np.eye(2, dtype=bool)], phi_hat[~np.eye(2, dtype=bool)], rtol=1e-5
  )
  assert np.all(state.phi_hat[2:] == 0)


def test_matches_vector_reference_three_tasks():
  rng = np.random.default_rng(0)
  gs = [rng.normal(size=(3, 6)) for _ in range(3)]
  agg = _agg(shuffle=False, beta=0.3)
  outs, state = _run(agg, gs)
  phi_hat = np.zeros((3, 3))
  for g, out in zip(gs, outs, strict=True):
    expected, phi_hat = _reference(g, phi_hat, beta=0.3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(state.phi_hat[:3, :3]), phi_hat, atol=1e-5)


def test_identical_gradients_untouched_and_single_task_identity():
  g = np.array([0.3, -1.0, 2.0])
  agg = _agg()
  outs, _ = _run(agg, [np.stack([g, g, g])] * 2)
  for out in outs:
    chex.assert_trees_all_close(out, 3 * g, rtol=1e-5)
  outs, _ = _run(agg, [g[None]])
  chex.assert_trees_all_close(outs[0], g, rtol=1e-6)


def test_zero_row_and_random_order():
  g = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 1.0, 0.0]])
  agg = _agg()
  outs, state = _run(agg, [g, g, g])
  chex.assert_tree_all_finite(outs)
  # With a zero partner only the pair (0, 2) interacts; for T = 3 with one pair the
  # partner order does not matter, so the result equals the fixed-order one.
  fixed, _ = _run(_agg(shuffle=False), [g, g, g])
  chex.assert_trees_all_close(outs, fixed, rtol=1e-5)
  # The state's key advances; an explicit rng leaves it alone.
  assert not np.array_equal(state.key, agg[0].init(None).key)
  _, state = _run(agg, [g], rng=jax.random.PRNGKey(3))
  np.testing.assert_array_equal(state.key, agg[0].init(None).key)


def test_task_ids_select_target_rows():
  g = np.array([[1.0, 0.0], [-1.0, 1.0]])
  agg = _agg(shuffle=False, max_tasks=4)
  _, state = _run(agg, [g], task_ids=jnp.array([3, 1]))
  phi = np.asarray(state.phi_hat)
  np.testing.assert_allclose([phi[3, 1], phi[1, 3]], [-0.5 / np.sqrt(2.0)] * 2, rtol=1e-5)
  assert np.count_nonzero(phi) == 2
