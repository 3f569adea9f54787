/* Bad input and heap faults, one per process: `faults <mode>`.
 *
 *   faults --list              names of every mode, one per line
 *   faults <mode>              run one fault
 *
 * A mode either checks an API result (huge sizes, bad alignments: wrong
 * results print "WRONG ..." and exit 1) or commits a heap fault (double free,
 * bad pointers, use after free) and then probes what the allocator does next.
 * If the process gets to the end it prints "note: <what happened>" on stdout
 * and exits 0.  The test driver (hz3/tests/hardening.rs) classifies the run:
 * exit 0 silent (survived), exit 0 with an "hz3:" report (reported, ignored),
 * abort with an "hz3:" message (detected), any other signal (crashed).
 *
 * Messages go out through write(2): after a heap fault stdio's own buffers
 * may no longer be trustworthy.
 */
#include "common.h"

/* Several modes use blocks after free on purpose. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

static void say(const char *s) {
    ssize_t r = write(1, s, strlen(s));
    (void)r;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say("note: ");
    say(buf);
    say("\n");
}

static int wrong;
static void wrong_if(int bad, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wrong_if(int bad, const char *fmt, ...) {
    if (!bad) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say("WRONG ");
    say(buf);
    say("\n");
    wrong = 1;
}

static const char *errname(int e) {
    switch (e) {
    case 0: return "0";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    default: return "other";
    }
}

#define HUGE_ALIGN ((size_t)1 << (sizeof(size_t) * 8 - 1)) /* SIZE_MAX/2 + 1 */

/* ------------------------------------------------------------- bad input */

static void m_malloc_size_max(void) {
    errno = 0;
    void *p = malloc(t_opaque(SIZE_MAX));
    int e = errno;
    wrong_if(p != NULL || e != ENOMEM, "malloc(SIZE_MAX) = %p, errno %s", p, errname(e));
    note("malloc(SIZE_MAX) = NULL, errno %s", errname(e));
}

static void m_calloc_overflow(void) {
    errno = 0;
    void *p = calloc(t_opaque(SIZE_MAX / 2 + 2), 2);
    int e = errno;
    wrong_if(p != NULL || e != ENOMEM, "calloc(SIZE_MAX/2+2, 2) = %p, errno %s", p, errname(e));
    errno = 0;
    void *q = calloc(t_opaque((size_t)1 << 33), (size_t)1 << 33);
    int e2 = errno;
    wrong_if(q != NULL || e2 != ENOMEM, "calloc(2^33, 2^33) = %p, errno %s", q, errname(e2));
    note("nmemb*size overflow: NULL, errno %s", errname(e));
}

static void m_reallocarray_overflow(void) {
    unsigned char *p = malloc(40);
    memset(p, 0x5a, 40);
    errno = 0;
    void *q = reallocarray(p, t_opaque(SIZE_MAX / 4), 8);
    int e = errno;
    wrong_if(q != NULL || e != ENOMEM, "reallocarray(p, SIZE_MAX/4, 8) = %p, errno %s", q, errname(e));
    for (int i = 0; i < 40; i++)
        if (p[i] != 0x5a) { wrong_if(1, "the old block changed at byte %d", i); break; }
    free(p);
    note("NULL, errno %s, old block intact", errname(e));
}

/* The alignments: 0, 3, 24 and huge (2^63, a power of two no mapping can have). */
static size_t align_arg(const char *which) {
    if (!strcmp(which, "0")) return 0;
    if (!strcmp(which, "3")) return 3;
    if (!strcmp(which, "24")) return 24;
    return HUGE_ALIGN;
}

/* aligned_alloc (glibc >= 2.38 and C17 DR 460): the alignment must be a power
 * of two, else NULL/EINVAL; a huge one is NULL with ENOMEM (or EINVAL). */
static void m_aligned_alloc(const char *which) {
    size_t a = align_arg(which);
    errno = 0;
    void *p = aligned_alloc(t_opaque(a), 64);
    int e = errno;
    if (a == HUGE_ALIGN)
        wrong_if(p != NULL || (e != ENOMEM && e != EINVAL), "aligned_alloc(huge, 64) = %p, errno %s", p, errname(e));
    else
        wrong_if(p != NULL || e != EINVAL, "aligned_alloc(%zu, 64) = %p, errno %s", a, p, errname(e));
    free(p);
    note("NULL, errno %s", errname(e));
}

/* posix_memalign: EINVAL unless a power-of-two multiple of sizeof(void *);
 * ENOMEM when it cannot be had; *memptr untouched on error. */
static void m_posix_memalign(const char *which) {
    size_t a = align_arg(which);
    void *sentinel = (void *)0x1234, *p = sentinel;
    int r = posix_memalign(&p, t_opaque(a), 64);
    if (a == HUGE_ALIGN)
        wrong_if(r != ENOMEM && r != EINVAL, "posix_memalign(huge) returned %d", r);
    else
        wrong_if(r != EINVAL, "posix_memalign(%zu) returned %d, not EINVAL", a, r);
    wrong_if(p != sentinel, "posix_memalign wrote *memptr (%p) on error", p);
    note("returns %s, *memptr untouched", errname(r));
}

/* memalign (glibc): an alignment below 16 is plain malloc, a non-power of two
 * is rounded up to one, a huge one fails with ENOMEM (EINVAL beyond 2^63). */
static void m_memalign(const char *which) {
    size_t a = align_arg(which);
    errno = 0;
    void *p = memalign(t_opaque(a), 64);
    int e = errno;
    if (a == HUGE_ALIGN) {
        wrong_if(p != NULL || (e != ENOMEM && e != EINVAL), "memalign(huge, 64) = %p, errno %s", p, errname(e));
        note("NULL, errno %s", errname(e));
    } else {
        size_t want = a <= 16 ? 16 : 32; /* 24 rounds up to 32 */
        wrong_if(p == NULL, "memalign(%zu, 64) failed", a);
        wrong_if(((uintptr_t)p % want) != 0, "memalign(%zu) = %p is not %zu-aligned", a, p, want);
        if (p) memset(p, 1, 64);
        free(p);
        note("a valid block, %zu-aligned (glibc semantics)", want);
    }
}

static void m_free_null(void) {
    free(NULL);
    free(t_escape(NULL));
    note("free(NULL) does nothing");
}

/* ------------------------------------------------------------- double frees */

/* After a double free: allocate many blocks of that size and hold them (is
 * one block handed out twice?), free them all, then churn the size class. A
 * detection may come later (when a cache is flushed); a silent survivor
 * reports how many duplicates it saw. */
static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

#define PROBE_N 4000
static void *probe_v[PROBE_N], *probe_s[PROBE_N];

static void probe_duplicates(size_t size) {
    for (int i = 0; i < PROBE_N; i++) {
        probe_v[i] = malloc(size);
        memset(probe_v[i], i & 0xff, size);
    }
    memcpy(probe_s, probe_v, sizeof probe_v);
    qsort(probe_s, PROBE_N, sizeof(void *), cmp_ptr);
    int dup = 0;
    for (int i = 1; i < PROBE_N; i++) dup += probe_s[i] == probe_s[i - 1];
    if (dup)
        note("not detected at once: %d block(s) handed out twice among %d live blocks", dup, PROBE_N);
    else
        note("no block handed out twice among %d live blocks", PROBE_N);
    for (int i = 0; i < PROBE_N; i++) free(probe_v[i]);
    for (int r = 0; r < 20; r++) {
        for (int i = 0; i < PROBE_N; i++) probe_v[i] = malloc(size);
        for (int i = 0; i < PROBE_N; i++) free(probe_v[i]);
    }
    note("then %d frees and 20 rounds of churn ran without a report", PROBE_N);
}

static void m_double_free(void) {
    void *p = t_escape(malloc(64));
    free(p);
    free(p);
    probe_duplicates(64);
}

static void m_double_free_aba(void) {
    void *a = t_escape(malloc(64)), *b = t_escape(malloc(64));
    free(a);
    free(b);
    free(a);
    probe_duplicates(64);
}

static void *free_in_thread(void *p) {
    free(p);
    return NULL;
}

static void m_double_free_cross_thread(void) {
    void *p = t_escape(malloc(64));
    pthread_t t;
    pthread_create(&t, NULL, free_in_thread, p);
    pthread_join(t, NULL);
    free(p);
    probe_duplicates(64);
}

static void m_double_free_large(void) {
    void *p = t_escape(malloc(1 << 20));
    memset(p, 1, 1 << 20);
    free(p);
    free(p);
    void *q = malloc(1 << 20);
    wrong_if(q == NULL, "malloc(1 MiB) after the double free failed");
    if (q) memset(q, 2, 1 << 20);
    free(q);
    note("second free ignored; allocation goes on");
}

/* ------------------------------------------------------------- bad pointers */

static void m_free_interior(void) {
    unsigned char *p = t_escape(malloc(100));
    free(p + 16);
    unsigned char *q = malloc(100), *r = malloc(100);
    if (q == p + 16 || r == p + 16)
        note("not detected: malloc then returned %p, inside the live block %p", (void *)(p + 16), (void *)p);
    else
        note("no visible effect");
}

static void m_free_stack(void) {
    _Alignas(16) char buf[256];
    memset(buf, 0, sizeof buf);
    free(t_escape(buf + 64));
    void *q = malloc(64);
    wrong_if(q == NULL, "malloc after the bad free failed");
    free(q);
    note("ignored");
}

static void m_free_mmap(void) {
    char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { wrong_if(1, "mmap failed"); return; }
    free(t_escape(m));
    free(t_escape(m + 4096));
    m[0] = 1; /* still ours, still mapped */
    munmap(m, 1 << 16);
    note("ignored, the mapping untouched");
}

/* An address inside hz3's arena that was never handed out: far beyond the
 * first blocks of this small program (64 MiB past a small block). */
static void m_free_arena_unallocated(void) {
    char *p = t_escape(malloc(16));
    char *q = p + (64u << 20);
    size_t u = malloc_usable_size(q);
    free(t_escape(q));
    note("ignored (usable size there: %zu)", u);
}

/* The same from a thread that has not allocated yet (it has no thread cache). */
static void *free_q_in_thread(void *q) {
    free(q);
    return NULL;
}

static void m_free_arena_unallocated_uncached(void) {
    char *p = t_escape(malloc(16));
    pthread_t t;
    pthread_create(&t, NULL, free_q_in_thread, p + (64u << 20));
    pthread_join(t, NULL);
    note("ignored");
}

static void m_realloc_stack(void) {
    _Alignas(16) char buf[256];
    memset(buf, 7, sizeof buf);
    void *q = realloc(t_escape(buf + 64), 100);
    note("realloc of a stack pointer returned %p", q);
}

static void m_realloc_interior(void) {
    unsigned char *p = t_escape(malloc(100));
    memset(p, 3, 100);
    void *q = realloc(p + 16, 300);
    note("realloc of an interior pointer returned %p", q);
}

static void m_usable_size_stack(void) {
    _Alignas(16) char buf[256];
    size_t u = malloc_usable_size(t_escape(buf + 32));
    wrong_if(u != 0, "malloc_usable_size(stack) = %zu", u);
    note("returns %zu", u);
}

/* ------------------------------------------------------------- use after free */

/* Overwrite the free list link of a freed block with garbage, then allocate. */
static void m_uaf_link_garbage(void) {
    uintptr_t *p = t_escape(malloc(64));
    free(p);
    p[0] = (uintptr_t)0x4141414141414140ull;
    void *a = malloc(64), *b = malloc(64);
    memset(b, 0, 64); /* plain: b is the garbage address */
    note("got %p and %p", a, b);
}

/* Overwrite the link with the address of a live block of the same size
 * (tcache poisoning): the live block is handed out a second time. */
static void m_uaf_link_to_live(void) {
    void **p = t_escape(malloc(64));
    void *live = t_escape(malloc(64));
    memset(live, 9, 64);
    free(p);
    p[0] = live;
    void *a = malloc(64), *b = malloc(64);
    if (a == live || b == live)
        note("not detected: the live block %p was handed out again", live);
    else
        note("the live block was not handed out again");
}

/* The same with a live block whose first word is zero: its "link" looks
 * like the end of the list, so even the hardened check accepts it. */
static void m_uaf_link_to_zeroed_live(void) {
    void **p = t_escape(malloc(64));
    void *live = t_escape(malloc(64));
    memset(live, 0, 64);
    free(p);
    p[0] = live;
    void *a = malloc(64), *b = malloc(64);
    if (a == live || b == live)
        note("not detected: the live block %p was handed out again", live);
    else
        note("the live block was not handed out again");
}

/* Write into a freed block's payload (not its link), then free and reuse. */
static void m_uaf_payload_write(void) {
    unsigned char *p = t_escape(malloc(64));
    free(p);
    memset(p + 32, 0xee, 32);
    unsigned char *q = malloc(64);
    note("payload writes after free are not detected (next malloc: %s)", q == p ? "the same block" : "another block");
}

/* ------------------------------------------------------------- table */

struct mode {
    const char *name;
    void (*fn0)(void);
    void (*fn1)(const char *);
    const char *arg;
};

static const struct mode modes[] = {
    {"malloc_size_max", m_malloc_size_max, 0, 0},
    {"calloc_overflow", m_calloc_overflow, 0, 0},
    {"reallocarray_overflow", m_reallocarray_overflow, 0, 0},
    {"aligned_alloc_align_0", 0, m_aligned_alloc, "0"},
    {"aligned_alloc_align_3", 0, m_aligned_alloc, "3"},
    {"aligned_alloc_align_24", 0, m_aligned_alloc, "24"},
    {"aligned_alloc_align_huge", 0, m_aligned_alloc, "huge"},
    {"posix_memalign_align_0", 0, m_posix_memalign, "0"},
    {"posix_memalign_align_3", 0, m_posix_memalign, "3"},
    {"posix_memalign_align_24", 0, m_posix_memalign, "24"},
    {"posix_memalign_align_huge", 0, m_posix_memalign, "huge"},
    {"memalign_align_0", 0, m_memalign, "0"},
    {"memalign_align_3", 0, m_memalign, "3"},
    {"memalign_align_24", 0, m_memalign, "24"},
    {"memalign_align_huge", 0, m_memalign, "huge"},
    {"free_null", m_free_null, 0, 0},
    {"double_free", m_double_free, 0, 0},
    {"double_free_aba", m_double_free_aba, 0, 0},
    {"double_free_cross_thread", m_double_free_cross_thread, 0, 0},
    {"double_free_large", m_double_free_large, 0, 0},
    {"free_interior", m_free_interior, 0, 0},
    {"free_stack", m_free_stack, 0, 0},
    {"free_mmap", m_free_mmap, 0, 0},
    {"free_arena_unallocated", m_free_arena_unallocated, 0, 0},
    {"free_arena_unallocated_uncached", m_free_arena_unallocated_uncached, 0, 0},
    {"uaf_link_garbage", m_uaf_link_garbage, 0, 0},
    {"uaf_link_to_live", m_uaf_link_to_live, 0, 0},
    {"uaf_link_to_zeroed_live", m_uaf_link_to_zeroed_live, 0, 0},
    {"uaf_payload_write", m_uaf_payload_write, 0, 0},
    {"realloc_stack", m_realloc_stack, 0, 0},
    {"realloc_interior", m_realloc_interior, 0, 0},
    {"usable_size_stack", m_usable_size_stack, 0, 0},
};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: faults --list | faults <mode>\n");
        return 2;
    }
    size_t n = sizeof modes / sizeof modes[0];
    if (!strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < n; i++) printf("%s\n", modes[i].name);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], modes[i].name)) continue;
        /* Make sure the allocator is up before the fault. */
        free(t_escape(malloc(1)));
        if (modes[i].fn0) modes[i].fn0();
        else modes[i].fn1(modes[i].arg);
        return wrong ? 1 : 0;
    }
    fprintf(stderr, "faults: unknown mode %s\n", argv[1]);
    return 2;
}
