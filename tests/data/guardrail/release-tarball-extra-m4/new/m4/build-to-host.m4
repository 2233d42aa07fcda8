# build-to-host.m4 -- convert a build directory name to the host's form
dnl Present only in the release tarball, never in the tagged tree.
AC_DEFUN([gl_BUILD_TO_HOST],
[
  gl_final_[$1]="$[$1]"
  AC_SUBST([$1_c])
  $1_c=`echo "$gl_final_[$1]" | sed -e 's/\\\\/\\\\\\\\/g'`
])
