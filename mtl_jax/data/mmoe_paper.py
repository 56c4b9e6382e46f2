"""The synthetic data of the MMoE paper (Ma et al., KDD 2018, §3.2): two tasks, one input.

    u_1 ⟂ u_2 unit vectors in R^d,   w_1 = c·u_1,   w_2 = c·(p·u_1 + √(1−p²)·u_2)
    x ~ N(0, I_d)   (the same x for both tasks)
    y_i = w_iᵀx + Σ_{k=1..m} sin(α_k·w_iᵀx + β_k) + ε_i,   ε_i ~ N(0, noise²)

so cos(w_1, w_2) = p, the paper's "task correlation". The paper fixes d = 100 and
ε ~ N(0, 0.01) (variance 0.01: ``noise`` = 0.1 is the standard deviation) but does not
state c, m or the distribution of α and β; the defaults here are c = 1, m = 10 and
α_k, β_k ~ N(0, ``sine_std``²) with ``sine_std`` = 1, shared by both tasks.

Random numbers are drawn in an order that does not depend on ``correlation``: with one
``seed``, task sets of different correlations share u_1, u_2, α, β, every x and every ε
(only w_2, hence y_2, changes), which makes comparisons across correlations paired.
"""

import dataclasses

import numpy as np

from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset


@dataclasses.dataclass(frozen=True)
class PaperProblem:
  """The generator's draws: weights ``w [2, d]``, sine parameters ``alpha, beta [m]``."""

  w: np.ndarray
  alpha: np.ndarray
  beta: np.ndarray
  noise: float

  def labels(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """``y [N, 2]`` for inputs ``x [N, d]`` and standard-normal noise draws ``eps [N, 2]``."""
    s = x.astype(np.float64) @ self.w.T  # [N, 2]
    sines = np.sin(self.alpha[None, None] * s[..., None] + self.beta[None, None]).sum(-1)
    return s + sines + self.noise * eps


def paper_problem(
  correlation: float,
  dim: int = 100,
  num_sines: int = 10,
  scale: float = 1.0,
  noise: float = 0.1,
  sine_std: float = 1.0,
  rng: np.random.Generator | None = None,
) -> PaperProblem:
  """Draws u_1 ⟂ u_2, builds w_1, w_2 with cos(w_1, w_2) = ``correlation``, draws α, β."""
  if not -1.0 <= correlation <= 1.0:
    raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
  if dim < 2:
    raise ValueError(f"dim must be >= 2 (two orthogonal directions), got {dim}")
  if num_sines < 0 or scale <= 0 or noise < 0 or sine_std < 0:
    raise ValueError(
      f"need num_sines >= 0, scale > 0, noise >= 0, sine_std >= 0; got {num_sines}, "
      f"{scale}, {noise}, {sine_std}"
    )
  rng = np.random.default_rng(0) if rng is None else rng
  q, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
  u1, u2 = q[:, 0], q[:, 1]
  w = scale * np.stack([u1, correlation * u1 + np.sqrt(1.0 - correlation**2) * u2])
  alpha = sine_std * rng.standard_normal(num_sines)
  beta = sine_std * rng.standard_normal(num_sines)
  return PaperProblem(w=w, alpha=alpha, beta=beta, noise=float(noise))


def mmoe_paper(
  correlation: float = 0.5,
  dim: int = 100,
  num_sines: int = 10,
  scale: float = 1.0,
  noise: float = 0.1,
  sine_std: float = 1.0,
  n_train: int = 10000,
  n_test: int = 2000,
  seed: int = 0,
  standardize_labels: bool = True,
) -> TaskSet:
  """The MMoE paper's two regression tasks on shared inputs (``shared_inputs=True``).

  Args:
    correlation: p = cos(w_1, w_2), in [-1, 1].
    dim: d, the input dimension (paper: 100).
    num_sines: m, the number of sine terms (not stated in the paper; 10).
    scale: c, the norm of w_1 and w_2 (not stated in the paper; 1).
    noise: standard deviation of ε (paper: variance 0.01, so 0.1).
    sine_std: α_k, β_k ~ N(0, sine_std²) (not stated in the paper; 1).
    n_train, n_test: examples per split; both tasks label the same examples.
    seed: seeds every draw (see the module docstring for pairing across correlations).
    standardize_labels: per-task label standardisation on the training split.

  Returns:
    A task set with tasks ``task_0``, ``task_1`` (both ``mse``), inputs ``[n, dim]``.
  """
  if n_train < 1 or n_test < 1:
    raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
  rng = np.random.default_rng(seed)
  problem = paper_problem(correlation, dim, num_sines, scale, noise, sine_std, rng)

  def split(n):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    y = problem.labels(x, rng.standard_normal((n, 2))).astype(np.float32)
    return [(x, y[:, i : i + 1]) for i in range(2)]

  specs = [TaskSpec(f"task_{i}", "mse", 1) for i in range(2)]
  train, test = split(n_train), split(n_test)
  return make_taskset(
    f"mmoe_paper_rho{correlation}",
    specs,
    train,
    test,
    shared_inputs=True,
    standardize_labels=standardize_labels,
  )
