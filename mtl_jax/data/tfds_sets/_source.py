"""Reading prepared TFDS datasets (ArrayRecord, no TensorFlow) without ever downloading.

* :func:`default_data_dir`: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets`` (TFDS's own
  default), without importing TFDS.
* :func:`check_prepared`: a file-system look for ``DATA_DIR/NAME/VERSION/dataset_info.json``
  next to ArrayRecord files; a dataset that is not there is one :class:`DataNotPreparedError`
  naming the dataset, the directory searched and the command that prepares it, raised before
  TFDS is even imported (milliseconds). Under ``tfds.testing.mock_data`` the look is skipped:
  the mock supplies the examples.
* :func:`load_splits`: ``tfds.data_source(..., download=False)``: random access to decoded
  examples (numpy), one split per requested name.
* :func:`to_float_image`: uint8 ``[H, W, C]`` -> float32 ``[size, size, C']`` in [0, 1].
"""

import glob
import os
import sys

import numpy as np
from PIL import Image

PREPARE_DOC = "docs/data.md"


class DataNotPreparedError(ValueError):
  """A TFDS dataset that is not prepared (downloaded and converted) under ``data_dir``."""


def default_data_dir() -> str:
  """Where TFDS looks by default: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  return os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def resolve_data_dir(data_dir: str | None) -> str:
  """``data_dir`` with ``~`` expanded, or :func:`default_data_dir` when empty/None."""
  return os.path.abspath(os.path.expanduser(data_dir)) if data_dir else default_data_dir()


def prepare_command(dataset: str, data_dir: str) -> str:
  """The command that prepares ``dataset`` as ArrayRecord in ``data_dir`` (needs network)."""
  return f"tfds build {dataset} --data_dir={data_dir} --file_format=array_record"


def _tfds_mocked() -> bool:
  """True inside ``tfds.testing.mock_data`` (it patches ``download_and_prepare``)."""
  if "tensorflow_datasets" not in sys.modules:  # a mock needs TFDS imported: no import here
    return False
  from tensorflow_datasets.core import dataset_builder

  fn = dataset_builder.DatasetBuilder.download_and_prepare
  return getattr(fn, "__module__", "") == "tensorflow_datasets.testing.mocking"


def _not_prepared(taskset: str, dataset: str, data_dir: str, found: str) -> DataNotPreparedError:
  target = os.path.join(data_dir, dataset)
  return DataNotPreparedError(
    f"task set {taskset!r}: TFDS dataset {dataset!r} is not prepared in data_dir "
    f"{data_dir!r} ({found}); nothing is downloaded at run time. Prepare it on a machine "
    f"with network (pip install tensorflow tensorflow-datasets) with "
    f"`{prepare_command(dataset, data_dir)}` and copy {target} to this machine, or pass "
    f"--config.data_dir=DIR naming a directory that holds a prepared {dataset}/ "
    f"(see {PREPARE_DOC})"
  )


def check_prepared(taskset: str, dataset: str, data_dir: str | None) -> str:
  """Raises :class:`DataNotPreparedError` unless ``dataset`` is prepared in ``data_dir``.

  Prepared means ``DATA_DIR/DATASET/VERSION/dataset_info.json`` with at least one
  ``*.array_record*`` file beside it (what ``tfds build --file_format=array_record`` and
  ``tfds.data_source(download=True)`` write). File-system only: no TFDS import, no network.

  Returns:
    The resolved data directory.
  """
  data_dir = resolve_data_dir(data_dir)
  if _tfds_mocked():
    return data_dir
  root = os.path.join(data_dir, dataset)
  infos = sorted(glob.glob(os.path.join(root, "*", "dataset_info.json")))
  if not infos:
    where = "no such directory" if not os.path.isdir(root) else "no VERSION/dataset_info.json"
    raise _not_prepared(
      taskset, dataset, data_dir, f"looked for {root}/VERSION/dataset_info.json: {where}"
    )
  if not any(glob.glob(os.path.join(os.path.dirname(i), "*.array_record*")) for i in infos):
    raise _not_prepared(
      taskset, dataset, data_dir, f"{root} holds no ArrayRecord files (prepared as TFRecord?)"
    )
  return data_dir


def load_splits(taskset: str, dataset: str, splits, data_dir: str | None) -> list:
  """Random-access sources of ``splits`` of a prepared ``dataset`` (never downloads)."""
  data_dir = check_prepared(taskset, dataset, data_dir)
  import tensorflow_datasets as tfds

  try:
    return tfds.data_source(
      dataset, split=list(splits), data_dir=data_dir, download=False, try_gcs=False
    )
  except Exception as e:  # e.g. prepared with another TFDS version than the installed one
    message = " ".join(str(e).split())[:300]
    raise _not_prepared(taskset, dataset, data_dir, f"TFDS cannot read it: {message}") from e


def read(source, indices, keys) -> dict[str, list]:
  """``{key: [example[key] for each index]}``; nested keys as ``"a/b"``."""
  out = {k: [] for k in keys}
  for i in indices:
    example = source[int(i)]
    for k in keys:
      v = example
      for part in k.split("/"):
        v = v[part]
      out[k].append(v)
  return out


def to_float_image(image, size: int | None, *, gray: bool = False, invert: bool = False):
  """uint8 ``[H, W, C]`` -> float32 ``[size, size, C]`` in [0, 1] (C = 1 with ``gray``).

  A non-square image is centre-cropped to a square first; resizing is bilinear with
  antialiasing (PIL). ``gray`` keeps the first channel; ``invert`` maps v to 1 - v.
  """
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if gray:
    image = image[..., :1]
  h, w = image.shape[:2]
  s = min(h, w)
  image = image[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
  if size is not None and size != s:
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    image = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
    image = image.reshape(size, size, -1)
  x = image.astype(np.float32) / 255.0
  return 1.0 - x if invert else x


def check_size(taskset: str, field: str, value, low: int = 1) -> None:
  """``value`` must be an int >= ``low`` (None allowed: "all")."""
  if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
    raise ValueError(f"task set {taskset!r}: {field} must be an integer >= {low}, got {value!r}")
