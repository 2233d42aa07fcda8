#!/bin/sh
# Build helper run by the Makefile.
set -eu
srcdir=${1:-.}
for f in main util; do
    cc ${CFLAGS:-} -c -o "$srcdir/$f.o" "$srcdir/src/$f.c"
done
cc -o "$srcdir/tool" "$srcdir/main.o" "$srcdir/util.o"
echo "built $srcdir/tool"
