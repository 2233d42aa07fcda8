#!/bin/sh
set -e
./tool < tests/files/good-1.txt
