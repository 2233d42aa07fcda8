#!/bin/sh
# Build helper run by the Makefile.
set -eu
srcdir=${1:-.}
cc ${CFLAGS:-} -o "$srcdir/tool" "$srcdir/src/main.c"
