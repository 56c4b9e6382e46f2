"""A stand-in process for tests of ``experiments.launch_local`` (run as its ``--module``):
says who it is, then process 1 fails with status 3 and the others wait to be killed."""

import os
import sys
import time

if __name__ == "__main__":
  print(f"hello from {os.environ['JAX_PROCESS_ID']} of {os.environ['JAX_NUM_PROCESSES']}")
  print(f"args {sys.argv[1:]}", flush=True)
  if os.environ["JAX_PROCESS_ID"] == "1":
    sys.exit(3)
  time.sleep(120)
