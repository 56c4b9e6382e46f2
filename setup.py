"""mtl_jax: multi-task and transfer learning in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="mtl_jax",
    version="0.1.0",
    description="Multi-task and transfer learning in JAX/Flax: stacked task parameters, "
    "loss weightings, gradient aggregators, conditioning, task grouping, fine-tuning.",
    packages=find_packages(include=["mtl_jax", "mtl_jax.*", "experiments", "experiments.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.35",
        "flax>=0.10",
        "optax>=0.2.7",
        "chex>=0.1.87",
        "absl-py",
        "ml_collections",
        "orbax-checkpoint",
        "tensorflow-datasets",
        "importlib_resources",
        "numpy",
        "scipy",
        "scikit-learn",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "nbmake", "ruff"],
        # benchmarks/vs_torchjd.py: the PyTorch peers (CPU build of torch).
        "bench": ["torch==2.13.0", "torchjd[quadprog_projector]==0.18.0"],
    },
)
