"""`bastion` ended by SIGTERM (a CI job cancelled, a container stopped) runs its cleanups:
the scan's spool directory under BASTION_HOME/work is removed, and the exit says what happened."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from bastion.oci import MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_MANIFEST, Store, image_manifest
from tests.image.layouts import config_doc

_ZEROS = 16 * 1024 * 1024


def _slow_layout(path: Path) -> str:
    """An image whose one layer decompresses to 4 GiB (one file of zeros), written as 256 gzip members
    of 16 MiB each (RFC 1952 2.2): seconds of spooling from a 4 MB blob. The config's diff_id is not
    that of the layer: the scan is ended long before it is compared."""
    size = 256 * _ZEROS
    header = tarfile.TarInfo("big")
    header.size = size
    member = gzip.compress(bytes(_ZEROS), compresslevel=9, mtime=0)
    blob = (
        gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT), mtime=0)
        + member * (size // _ZEROS)
        + gzip.compress(bytes(1024), mtime=0)
    )
    store = Store(path)
    layer = store.put_blob(blob, MEDIA_TYPE_LAYER_GZIP)
    config = store.put_json(config_doc(["sha256:" + "0" * 64]), MEDIA_TYPE_CONFIG)
    manifest = store.put_json(image_manifest(config, [layer]), MEDIA_TYPE_MANIFEST)
    store.tag("slow/image:1", manifest)
    return f"oci-dir://{path}:slow/image:1"


def test_sigterm_removes_the_scan_directory(tmp_path: Path) -> None:
    reference = _slow_layout(tmp_path / "layout")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["BASTION_HOME"] = str(home)
    process = subprocess.Popen(
        [sys.executable, "-m", "bastion", "sbom", reference],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in (home / "work").glob("scan-*/layer-0.tar")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the scan never started spooling"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "bastion: terminated" in stderr and "internal error" not in stderr
    assert list((home / "work").iterdir()) == []
