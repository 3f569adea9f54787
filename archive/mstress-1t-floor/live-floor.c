/* live-floor.so: counts a program's live heap bytes under glibc and prints, at exit,
 * the peak of the live total measured four ways:
 *   usable   - glibc's usable size of each block (request <= usable <= request + 15)
 *   classes4 / classes8 / classes16 - that size rounded up to a size class with
 *              16-byte steps up to 128 B and 4 / 8 / 16 classes per doubling above
 * A size-class allocator whose classes are laid out that way can hold no less than
 * the classesN peak, even with no partly used spans, no caches and no metadata.
 *
 *   gcc -O2 -shared -fPIC -pthread -o /tmp/live-floor.so archive/mstress-1t-floor/live-floor.c
 *   LD_PRELOAD=/tmp/live-floor.so target/release/hz3-bench-driver mstress ...
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define WAYS 4
static long live[WAYS], peak[WAYS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static size_t class_round(size_t n, size_t steps) {
    if (n <= 128) return (n + 15) & ~(size_t)15;
    size_t s = n - 1;
    size_t base = (size_t)1 << (63 - __builtin_clzl(s));
    size_t step = base / steps;
    return base + ((s - base) / step + 1) * step;
}

static void count(void *p, long sign) {
    size_t u = malloc_usable_size(p);
    long v[WAYS] = {(long)u, (long)class_round(u, 4), (long)class_round(u, 8), (long)class_round(u, 16)};
    pthread_mutex_lock(&mu);
    for (int i = 0; i < WAYS; i++) {
        live[i] += sign * v[i];
        if (live[i] > peak[i]) peak[i] = live[i];
    }
    pthread_mutex_unlock(&mu);
}

void *malloc(size_t n) { void *p = __libc_malloc(n); if (p) count(p, 1); return p; }
void free(void *p) { if (p) count(p, -1); __libc_free(p); }
void *calloc(size_t a, size_t b) { void *p = __libc_calloc(a, b); if (p) count(p, 1); return p; }
void *realloc(void *q, size_t n) {
    if (q) count(q, -1);
    void *p = __libc_realloc(q, n);
    if (p) count(p, 1);
    else if (q && n) count(q, 1); /* failed: the old block is still live */
    return p;
}
void *memalign(size_t a, size_t n) { void *p = __libc_memalign(a, n); if (p) count(p, 1); return p; }
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void **r, size_t a, size_t n) {
    void *p = __libc_memalign(a, n);
    if (!p) return 12; /* ENOMEM */
    count(p, 1);
    *r = p;
    return 0;
}

__attribute__((destructor)) static void report(void) {
    char b[256];
    int k = snprintf(b, sizeof b, "peak live KiB: usable %ld classes4 %ld classes8 %ld classes16 %ld\n",
                     peak[0] / 1024, peak[1] / 1024, peak[2] / 1024, peak[3] / 1024);
    if (k > 0) (void)!write(2, b, (size_t)k);
}
