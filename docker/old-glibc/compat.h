/* Force-included (-include) when hz3/tests/c/edge.c is compiled inside an old
 * Debian root filesystem (docker/old-glibc/check.sh): glibc before 2.33 has no
 * mallinfo2. hz3 exports it, so declare it (weak, so the program also links
 * where nothing defines it) with glibc's layout. _GNU_SOURCE as edge.c has it
 * (features.h must see it before the first header). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <features.h>
#if !__GLIBC_PREREQ(2, 33)
#include <malloc.h>
#include <stddef.h>
struct mallinfo2 {
    size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
extern struct mallinfo2 mallinfo2(void) __attribute__((weak));
#endif
