"""The ferrox artifact: one verified file format for every fitted object.

Layout: magic bytes ``FERROXAF``, format version, the kind of object, body length, SHA-256 of kind and
body, then a compact serde body. Reading verifies the hash before parsing anything; no pickle inside.

>>> import numpy as np, ferrox as fx
>>> blob = fx.Dataset(np.eye(3)).to_bytes()
>>> info = fx.artifact_info(blob)
>>> info["kind"], info["format_version"], len(info["sha256"])
('dataset', 1, 64)
"""

from __future__ import annotations

import os
from typing import Any

from . import _ferrox

__all__ = ["artifact_info", "FORMAT_VERSION"]

FORMAT_VERSION: int = _ferrox.FORMAT_VERSION


def artifact_info(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> dict[str, Any]:
    """Verifies an artifact (bytes or a file path) and returns its header.

    Returns a dict with ``format_version``, ``kind``, ``body_len`` and ``sha256`` (hex). Raises
    :class:`ferrox.ModelIntegrityError` when the bytes were changed and :class:`ferrox.ModelVersionError`
    when a newer ferrox wrote them.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        with open(os.fspath(source), "rb") as f:
            data = f.read()
    return dict(_ferrox.artifact_header(data))
