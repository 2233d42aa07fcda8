#!/bin/sh
# Makes hello-1.0.tar.gz from hello-1.0/ byte for byte the same every time (sorted names, numeric
# owners, mtime 0, no gzip name or time), so the SHA256 in hello.yaml stays true.
set -e
cd "$(dirname "$0")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar -cf - hello-1.0 | gzip -9 -n > hello-1.0.tar.gz
sha256sum hello-1.0.tar.gz
