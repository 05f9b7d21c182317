"""What an exported model records of itself: ``model_interface.MODEL_INFO_NAME``
beside it (``train`` writes it), read before a run to settle the image size."""

import os
from typing import Optional

from model_runner.model import ModelLoadError
from transforms.dataset.model_interface import MODEL_INFO_NAME


def recorded_image_size(model_path: str) -> Optional[int]:
    """The image size a model records it was trained on: ``image_size`` of
    ``model_interface.MODEL_INFO_NAME`` in the SavedModel folder (or beside
    a frozen ``.pb``), which ``train`` writes; None when there is no such
    file (the released model: 512).

    Args:
        model_path: SavedModel folder or frozen ``.pb`` (local or ``gs://``).

    Returns:
        The recorded side, or None.

    Raises:
        ModelLoadError: the file exists but holds no positive integer
            ``image_size``.
    """
    import json

    from apache_beam.io.filesystems import FileSystems

    root = model_path.rstrip("/")
    folder = root if "://" in root or os.path.isdir(root) else os.path.dirname(root)
    if "://" in root and root.endswith(".pb"):
        folder = root.rsplit("/", 1)[0]
    info_path = FileSystems.join(folder, MODEL_INFO_NAME) if folder else MODEL_INFO_NAME
    try:
        if not FileSystems.exists(info_path):
            return None
        with FileSystems.open(info_path) as f:
            size = json.loads(f.read().decode("utf-8")).get("image_size")
    except (OSError, ValueError, AttributeError) as e:
        raise ModelLoadError(f"{info_path} is not a model's record ({e})") from e
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ModelLoadError(f"{info_path}: image_size {size!r} is not a positive integer")
    return size
