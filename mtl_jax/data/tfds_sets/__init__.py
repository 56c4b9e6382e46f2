"""Task sets from prepared TensorFlow Datasets (ArrayRecord via ``tfds.data_source``).

No TensorFlow and no download: every builder takes ``data_dir`` (default
``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``) and first checks, on the file system, that
its dataset is prepared there; if not, one :class:`DataNotPreparedError` (a ``ValueError``)
names the dataset, the directory searched and the command that prepares it. How to
prepare each dataset offline: docs/data.md.

========================  ==========  ============================================
task set                  dataset     tasks
========================  ==========  ============================================
``omniglot_alphabets``    omniglot    one per alphabet (≤ 50), characters as classes
``celeba_attributes``     celeb_a     40 binary attributes of one face (sigmoid)
``cifar100_superclasses`` cifar100    20 superclasses, 5 fine classes each
``multi_mnist``           mnist       left / right digit of two overlaid digits
========================  ==========  ============================================
"""

from mtl_jax.data.tfds_sets._source import (
  DataNotPreparedError,
  check_prepared,
  default_data_dir,
  prepare_command,
  resolve_data_dir,
)
from mtl_jax.data.tfds_sets.celeba import celeba_attributes
from mtl_jax.data.tfds_sets.cifar100 import cifar100_superclasses
from mtl_jax.data.tfds_sets.multi_mnist import multi_mnist
from mtl_jax.data.tfds_sets.omniglot import omniglot_alphabets

# Task set name -> (builder, the TFDS dataset it reads).
TFDS_TASKSETS = {
  "omniglot_alphabets": (omniglot_alphabets, "omniglot"),
  "celeba_attributes": (celeba_attributes, "celeb_a"),
  "cifar100_superclasses": (cifar100_superclasses, "cifar100"),
  "multi_mnist": (multi_mnist, "mnist"),
}

__all__ = [
  "TFDS_TASKSETS",
  "DataNotPreparedError",
  "celeba_attributes",
  "check_prepared",
  "cifar100_superclasses",
  "default_data_dir",
  "multi_mnist",
  "omniglot_alphabets",
  "prepare_command",
  "resolve_data_dir",
]
