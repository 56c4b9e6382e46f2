"""Known answers for ``graddrop`` (Gradient Sign Dropout, Chen et al. 2020)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mtl_jax import aggregators
from mtl_jax.aggregators.graddrop import graddrop_mask

G = np.array([[1.0, -2.0, 3.0, 0.0, -1.0], [-3.0, 1.0, 2.0, 0.0, -4.0]])


def test_mask_by_hand():
  # P = ½(1 + Σg/Σ|g|) = [1/4, 1/3, 1, 1/2, 0].
  u = jnp.array([0.2, 0.5, 0.99, 0.3, 0.0])
  mask = np.asarray(graddrop_mask(jnp.asarray(G), u))
  expected = np.array(
    [
      [True, True, True, False, True],  # keep +, keep -, keep +, -, keep -
      [False, False, True, False, True],
    ]
  )
  np.testing.assert_array_equal(mask, expected)
  np.testing.assert_allclose((mask * G).sum(0), [1.0, -2.0, 5.0, 0.0, -5.0])


def test_update_uses_the_given_rng():
  agg = aggregators.get("graddrop")
  key = jax.random.PRNGKey(7)
  out, state = jax.jit(agg.update)(jnp.asarray(G, jnp.float32), agg.init(None), rng=key)
  u = np.asarray(jax.random.uniform(key, (5,)))
  purity = 0.5 * (1 + G.sum(0) / np.where(np.abs(G).sum(0) > 0, np.abs(G).sum(0), 1))
  keep = np.where(purity > u, G > 0, G < 0)
  chex.assert_trees_all_close(np.asarray(out), (keep * G).sum(0), rtol=1e-6)
  np.testing.assert_array_equal(state.key, agg.init(None).key)


def test_agreeing_signs_give_the_sum():
  agg = aggregators.get("graddrop")
  update = jax.jit(agg.update)
  state = agg.init(None)
  g = jnp.array([0.5, -2.0, 0.0, 3.0])
  same_sign = jnp.stack([g, 2 * g, g])
  for _ in range(3):
    out, state = update(same_sign, state)
    chex.assert_trees_all_close(out, 4 * g)
  out, _ = update(g[None], state)
  chex.assert_trees_all_close(out, g)


def test_unbiased_for_the_sum_and_leak():
  agg = aggregators.get("graddrop")
  keys = jax.random.split(jax.random.PRNGKey(0), 4000)
  outs = jax.jit(jax.vmap(lambda k: agg.update(jnp.asarray(G), agg.init(None), rng=k)[0]))(keys)
  np.testing.assert_allclose(np.asarray(outs).mean(0), G.sum(0), atol=0.15)
  full, _ = aggregators.get("graddrop", leak=1.0).update(jnp.asarray(G), agg.init(None))
  chex.assert_trees_all_close(full, G.sum(0).astype(np.float32))
