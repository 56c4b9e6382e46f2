"""Known answers for ``cagrad``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import aggregators
from mtl_jax.aggregators.cagrad import cagrad_dual


def _update(g, **hp):
  agg = aggregators.get("cagrad", **hp)
  return jax.jit(agg.update)(g, agg.init(None), None)[0]


def test_c_zero_is_the_mean():
  g = jnp.asarray(np.random.default_rng(0).normal(size=(4, 7)), jnp.float32)
  chex.assert_trees_all_close(_update(g, c=0.0), jnp.mean(g, axis=0), rtol=1e-7, atol=0)


@pytest.mark.parametrize("rescale,factor", [(0, 1.4), (1, 1.4 / 1.16), (2, 1.0)])
def test_single_task_scales(rescale, factor):
  g = jnp.array([[3.0, -1.0]])
  chex.assert_trees_all_close(_update(g, rescale=rescale), factor * g[0], rtol=1e-6)


def _dual(w, gram, c):
  b = np.full(gram.shape[0], 1.0 / gram.shape[0])
  return w @ gram @ b + c * np.sqrt(b @ gram @ b) * np.sqrt(np.maximum(w @ gram @ w, 0))


@pytest.mark.parametrize("t", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dual_matches_grid(t, seed):
  rng = np.random.default_rng(seed)
  g = rng.normal(size=(t, 5))
  if seed == 1:
    g[1] = -0.7 * g[0] + 0.2 * rng.normal(size=5)
  gram = g @ g.T
  w = np.asarray(cagrad_dual(jnp.asarray(gram, jnp.float32), 0.4), np.float64)
  n = 20000 if t == 2 else 300
  a, b = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1) if t == 3 else [0])
  keep = a + b <= 1
  grid = (
    np.stack([a[keep], 1 - a[keep]], 1)
    if t == 2
    else np.stack([a[keep], b[keep], 1 - a[keep] - b[keep]], 1)
  )
  best = min(_dual(v, gram, 0.4) for v in grid)
  assert _dual(w, gram, 0.4) <= best + 1e-5 * np.sqrt(gram.max())


def test_primal_maximises_worst_improvement_in_the_ball():
  # In 2-D the ball boundary is a circle: d = g0 + c‖g0‖(cos θ, sin θ).
  g = np.array([[1.0, 0.3], [-0.6, 1.0]])
  c = 0.4
  d = np.asarray(_update(jnp.asarray(g, jnp.float32), c=c, rescale=0), np.float64)
  g0 = g.mean(0)
  np.testing.assert_allclose(np.linalg.norm(d - g0), c * np.linalg.norm(g0), rtol=1e-4)
  theta = np.linspace(0, 2 * np.pi, 100001)
  cands = g0 + c * np.linalg.norm(g0) * np.stack([np.cos(theta), np.sin(theta)], 1)
  best = (cands @ g.T).min(1).max()
  np.testing.assert_allclose((g @ d).min(), best, rtol=1e-4)
