"""Images opened for scanning, from any source: the local store, ``oci-dir://``, ``docker-archive://``,
a registry, or ``fs://DIR``."""

from bastion.image._model import Contents, DirContents, FileInfo, FileKind, ImageTarget, LayerInfo
from bastion.image._open import open_target

__all__ = ["Contents", "DirContents", "FileInfo", "FileKind", "ImageTarget", "LayerInfo", "open_target"]
