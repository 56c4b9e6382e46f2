"""Generated task sets: MMoE-style correlated regression and sinusoid regression."""

import numpy as np

from mtl_jax.tasks import TaskSet, TaskSpec, make_taskset


def correlated_unit_vectors(
  num_tasks: int,
  dim: int,
  correlation: float,
  rng: np.random.Generator,
  clusters: int = 1,
  between: float | None = None,
) -> np.ndarray:
  """Unit vectors w_1..w_T with cos(w_i, w_j) = ``correlation`` (within a cluster).

  w_i = √b·u_0 + √(ρ−b)·u_{c(i)} + √(1−ρ)·v_i with orthonormal u's and v's, so tasks in
  the same cluster have cosine ρ = ``correlation`` and tasks in different clusters
  cosine b = ``between`` (default ρ when there is one cluster, else 0). When
  ``dim`` < 1 + clusters + T the directions are random Gaussian instead of orthonormal
  and the cosines only hold approximately (≈ 1/√dim error).

  Returns:
    ``[T, dim]`` array of unit vectors.
  """
  if not -1.0 <= correlation <= 1.0:
    raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
  b = correlation if (between is None and clusters == 1) else (between or 0.0)
  if correlation < 0:
    if num_tasks != 2 or clusters != 1:
      raise ValueError("a negative correlation is only possible for T = 2 tasks")
    # Two tasks: w_2 = ρ u_1 + √(1−ρ²) u_2 (the KDD'18 construction).
    q, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
    return np.stack([q[:, 0], correlation * q[:, 0] + np.sqrt(1 - correlation**2) * q[:, 1]])
  if not 0.0 <= b <= correlation:
    raise ValueError(f"need 0 <= between ({b}) <= correlation ({correlation})")
  n_dirs = 1 + clusters + num_tasks
  if dim >= n_dirs:
    basis, _ = np.linalg.qr(rng.standard_normal((dim, n_dirs)))
    basis = basis.T
  else:
    basis = rng.standard_normal((n_dirs, dim)) / np.sqrt(dim)
  u0, uc, v = basis[0], basis[1 : 1 + clusters], basis[1 + clusters :]
  cluster_of = np.arange(num_tasks) % clusters
  w = (
    np.sqrt(b) * u0[None] + np.sqrt(correlation - b) * uc[cluster_of] + np.sqrt(1 - correlation) * v
  )
  return w / np.linalg.norm(w, axis=1, keepdims=True)


def mmoe_regression(
  num_tasks: int = 2,
  correlation: float = 0.5,
  dim: int = 100,
  n_train: int = 1000,
  n_test: int = 1000,
  num_sines: int = 10,
  scale: float = 1.0,
  noise: float = 0.01,
  clusters: int = 1,
  between: float | None = None,
  seed: int = 0,
  standardize_labels: bool = True,
) -> TaskSet:
  """Synthetic regression tasks with controlled correlation (Ma et al., KDD 2018, §3).

  y_i = w_iᵀx + Σ_m sin(α_m w_iᵀx + β_m) + ε with x ~ N(0, I_dim), w_i = scale·unit
  vector from :func:`correlated_unit_vectors`, α_m, β_m ~ N(0, 1) shared by all tasks
  and ε ~ N(0, noise²). Each task draws its own inputs. ``clusters``/``between`` plant
  groups of related tasks (for task grouping). Task names: ``task_0`` ... .
  """
  rng = np.random.default_rng(seed)
  w = scale * correlated_unit_vectors(num_tasks, dim, correlation, rng, clusters, between)
  alpha, beta = rng.standard_normal(num_sines), rng.standard_normal(num_sines)

  def draw(n, i):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    s = x @ w[i]
    y = s + np.sin(alpha[None] * s[:, None] + beta[None]).sum(1)
    return x, (y + noise * rng.standard_normal(n))[:, None].astype(np.float32)

  specs = [TaskSpec(f"task_{i}", "mse", 1) for i in range(num_tasks)]
  train = [draw(n_train, i) for i in range(num_tasks)]
  test = [draw(n_test, i) for i in range(num_tasks)]
  return make_taskset(
    f"mmoe_regression_rho{correlation}", specs, train, test, standardize_labels=standardize_labels
  )


def sinusoid_regression(
  num_tasks: int = 5,
  n_train: int = 200,
  n_test: int = 200,
  scale_range=(0.1, 100.0),
  noise: float = 0.05,
  n_train_per_task=None,
  seed: int = 0,
  standardize_labels: bool = True,
) -> TaskSet:
  """Sinusoid tasks y = A_i sin(x − φ_i) + ε, x ~ U[−5, 5], whose label scales differ.

  Amplitudes A_i are log-spaced over ``scale_range`` (deliberately 1000× apart, to show
  why regression labels should be put on the same scale), phases φ_i ~ U[0, π], noise is
  ``noise·A_i``. ``n_train_per_task`` (a list) gives tasks different data sizes.
  The task descriptor z_i = (log A_i, φ_i) is attached as metadata.
  """
  rng = np.random.default_rng(seed)
  amp = np.geomspace(scale_range[0], scale_range[1], num_tasks)
  phase = rng.uniform(0, np.pi, num_tasks)
  sizes = list(n_train_per_task) if n_train_per_task is not None else [n_train] * num_tasks
  if len(sizes) != num_tasks:
    raise ValueError(f"n_train_per_task: expected {num_tasks} sizes, got {len(sizes)}")

  def draw(n, i):
    x = rng.uniform(-5, 5, (n, 1)).astype(np.float32)
    y = amp[i] * np.sin(x - phase[i]) + noise * amp[i] * rng.standard_normal((n, 1))
    return x, y.astype(np.float32)

  specs = [TaskSpec(f"sine_{i}", "mse", 1) for i in range(num_tasks)]
  return make_taskset(
    "sinusoid",
    specs,
    [draw(sizes[i], i) for i in range(num_tasks)],
    [draw(n_test, i) for i in range(num_tasks)],
    descriptors=np.stack([np.log(amp), phase], 1),
    standardize_labels=standardize_labels,
  )
