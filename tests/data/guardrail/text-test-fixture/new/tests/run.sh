#!/bin/sh
set -e
./tool < tests/files/good-1.txt
./tool < tests/files/good-2.txt
