import os
import tempfile

# Tests run on the CPU; keep XLA from grabbing every core per test process.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Share compiled programs between the xdist workers and the launcher subprocesses that
# some tests start (they compile the same steps again). Same executables, same numbers.
_CACHE = os.path.join(tempfile.gettempdir(), f"mtl_jax_test_cache_{os.getuid()}")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
