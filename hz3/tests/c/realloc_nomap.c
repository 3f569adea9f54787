/* realloc when the system refuses new mappings (RLIMIT_AS reached; the same
 * happens with strict overcommit or vm.max_map_count exhausted): a block grown
 * to a size the arena serves (64-256 KiB, which realloc normally gives a
 * mapping of its own) must still move into a size class instead of failing.
 * Prints "all checks passed" and exits 0, or names the failing step and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

static unsigned long vm_size_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long kib = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %lu kB", &kib) == 1) break;
    fclose(f);
    return kib * 1024;
}

int main(void) {
    /* Warm up: the arena, this thread's cache and a segment with room for the
     * classes used below are set up before the limit. */
    void *warm[8];
    for (int i = 0; i < 8; i++) warm[i] = malloc(200 * 1024);
    for (int i = 0; i < 8; i++) free(warm[i]);
    char *p = malloc(48 * 1024);
    if (!p) { puts("malloc(48 KiB) failed"); return 1; }
    for (int i = 0; i < 48 * 1024; i++) p[i] = (char)(i * 7);

    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = vm_size_bytes() + 16 * 1024;
    if (setrlimit(RLIMIT_AS, &rl) != 0) { perror("setrlimit"); return 1; }
    void *probe = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe != MAP_FAILED) { puts("the limit did not stop a new mapping: test not meaningful"); return 1; }

    errno = 0;
    char *q = realloc(p, 100 * 1024);
    if (!q) { printf("realloc(48 KiB -> 100 KiB) returned NULL (errno %d) with no new mapping possible\n", errno); return 1; }
    for (int i = 0; i < 48 * 1024; i++)
        if (q[i] != (char)(i * 7)) { printf("byte %d lost by realloc\n", i); return 1; }
    memset(q + 48 * 1024, 1, 52 * 1024);
    char *r = realloc(q, 180 * 1024);
    if (!r) { puts("realloc(100 KiB -> 180 KiB) returned NULL"); return 1; }
    if (r[0] != 0 || r[100 * 1024 - 1] != 1) { puts("bytes lost by the second realloc"); return 1; }
    free(r);
    puts("all checks passed");
    return 0;
}
