"""Images opened for scanning, from any source: the local store, ``oci-dir://``, ``docker-archive://``,
a registry, or ``fs://DIR``."""

from bastion.image._model import FileInfo, FileKind, ImageTarget, LayerInfo
from bastion.image._open import open_target

__all__ = ["FileInfo", "FileKind", "ImageTarget", "LayerInfo", "open_target"]
