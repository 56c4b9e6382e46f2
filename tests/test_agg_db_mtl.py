"""Known answers for ``db_mtl``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators


def _reference(gs, losses, beta, beta_sigma, eps=1e-8):
  """LibMTL's DB_MTL.backward, literally, in float64 (all tasks every step)."""
  buf = np.zeros_like(gs[0], dtype=np.float64)
  out = []
  for step, (g, loss) in enumerate(zip(gs, losses), start=1):
    h = np.asarray(g, np.float64) / (np.asarray(loss, np.float64)[:, None] + eps)
    buf = h + (beta / step**beta_sigma) * (buf - h)
    u = np.linalg.norm(buf, axis=1)
    out.append(((u.max() / (u + eps))[:, None] * buf).sum(0))
  return out


def _run(gs, losses, task_ids=None, **hp):
  agg = aggregators.get("db_mtl", max_tasks=4, **hp)
  update = jax.jit(agg.update)
  state = agg.init(jnp.zeros(gs[0].shape[1]))
  outs = []
  for g, loss in zip(gs, losses):
    d, state = update(jnp.asarray(g), state, None, losses=jnp.asarray(loss), task_ids=task_ids)
    outs.append(d)
  return outs, state


def test_hand_computed_two_tasks():
  # Step 1, β = 0.5: h = g/L = (1, 0), (0, 3); buffers (½)h = (½, 0), (0, 3/2); norms ½, 3/2;
  # scales 3, 1: update (3/2, 3/2).
  # Step 2: h = (0, 1), (3, 0); buffers ½(buffer + h) = (¼, ½), (3/2, 3/4); norms √5/4,
  # 3√5/4; scales 3, 1: update 3(¼, ½) + (3/2, 3/4) = (9/4, 9/4).
  gs = [np.array([[2.0, 0.0], [0.0, 3.0]]), np.array([[0.0, 4.0], [3.0, 0.0]])]
  losses = [np.array([2.0, 1.0]), np.array([4.0, 1.0])]
  (d1, d2), state = _run(gs, losses, beta=0.5)
  chex.assert_trees_all_close(d1, jnp.array([1.5, 1.5]), rtol=1e-6)
  chex.assert_trees_all_close(d2, jnp.array([2.25, 2.25]), rtol=1e-6)
  np.testing.assert_allclose(state.buffer[:2], [[0.25, 0.5], [1.5, 0.75]], rtol=1e-6)
  np.testing.assert_array_equal(state.count, [2, 2, 0, 0])


@pytest.mark.parametrize(("beta", "beta_sigma"), [(0.9, 0.0), (0.6, 0.5)])
def test_matches_libmtl_formula(beta, beta_sigma):
  rng = np.random.default_rng(0)
  gs = [rng.normal(size=(3, 5)).astype(np.float32) for _ in range(4)]
  losses = [rng.uniform(0.2, 3.0, size=3).astype(np.float32) for _ in range(4)]
  outs, _ = _run(gs, losses, beta=beta, beta_sigma=beta_sigma)
  for d, expected in zip(outs, _reference(gs, losses, beta, beta_sigma)):
    chex.assert_trees_all_close(d, expected.astype(np.float32), rtol=1e-5, atol=1e-6)


def test_state_is_keyed_by_task_id():
  g = [np.array([[2.0, 0.0], [0.0, 3.0]])]
  _, state = _run(g, [np.array([2.0, 1.0])], task_ids=jnp.array([3, 0]), beta=0.5)
  np.testing.assert_allclose(state.buffer, [[0, 1.5], [0, 0], [0, 0], [0.5, 0]], rtol=1e-6)
  np.testing.assert_array_equal(state.count, [1, 0, 0, 1])


def test_rejects_bad_hyperparameters():
  for hp in [{"beta": 1.0}, {"beta_sigma": -1.0}, {"eps": 0.0}]:
    with pytest.raises(ValueError, match="db_mtl"):
      aggregators.get("db_mtl", **hp)
