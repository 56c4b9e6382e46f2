import os

# Tests run on the CPU; keep XLA from grabbing every core per test process.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
