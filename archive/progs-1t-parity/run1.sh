#!/bin/bash
# usage: run1.sh prog wrapper...   (runs the program with the wrapper prefix; LD_PRELOAD set by caller)
p=$1; shift
I=${BENCH_MATRIX_PROGRAM_DIR:-/tmp/progs-in}
case $p in
 sqlite) exec "$@" /usr/bin/sqlite3 -batch :memory: < $I/prog_sqlite.sql ;;
 python) PYTHONMALLOC=malloc PYTHONHASHSEED=0 exec "$@" /usr/bin/python3 -S $I/prog_python.py ;;
 lua) exec "$@" /usr/bin/lua5.4 $I/prog_lua.lua ;;
 gcc) exec "$@" /usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet -O2 -fno-ident $I/prog_gcc.c -o /dev/stdout ;;
 z3) exec "$@" /usr/bin/z3 -smt2 $I/prog_z3.smt2 ;;
 gs) exec "$@" /usr/bin/gs -q -dNOPAUSE -dBATCH -dSAFER -r72 -sDEVICE=pgmraw -sOutputFile=%stdout $I/prog_gs.ps ;;
esac
