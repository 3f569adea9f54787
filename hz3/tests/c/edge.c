/* edge.c - glibc malloc API semantics, checked one by one under LD_PRELOAD.
 *
 * Build: cc -O1 -fno-builtin -pthread -I. edge.c -o edge -ldl
 * Run:   LD_PRELOAD=/path/libhz3_fast.so ./edge --expect-lib libhz3_fast.so --strict
 *
 * Sections run once single-threaded, then all thread-safe sections again in
 * --threads N threads at once.  Each failed check prints "FAIL file:line:
 * ..." on stderr; the exit status is 1 if anything failed.
 *
 * Flags
 *   --expect-lib NAME     NAME must be mapped and must provide malloc/free/...
 *   --require-exports     every entry point of the hz3 ABI must come from NAME
 *   --require-c23         free_sized/free_aligned_sized must exist
 *   --glibc-realloc0      realloc(p, 0) must free p and return NULL (glibc)
 *   --mallinfo-accounting mallinfo2 must track a 10 MB live allocation
 *   --strict              all four above
 *   --skip a,b,c          skip sections (only for validating other allocators)
 *   --threads N           threads in the concurrent phase (default 4, 0 = none)
 *   --seed N              change the data/size seed
 */
#define _GNU_SOURCE
#include "common.h"

#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>

static const char *opt_lib;
static int opt_require_exports, opt_require_c23, opt_glibc_realloc0, opt_mallinfo;
static int opt_threads = 4;
static uint64_t opt_seed = 1;
static char opt_skip[1024];

static size_t page_size;
static __thread int in_threads;

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* Fill the whole usable area with `seed` pattern.  Blocks above 4 MiB are
 * touched in full at both ends and one word every 64 KiB in between, which
 * still proves every page range is writable without costing seconds. */
#define BIG_STRIDE_LIMIT (4 * MiB)
static void fill_usable(unsigned char *p, size_t n, unsigned char byte) {
    if (n <= BIG_STRIDE_LIMIT) {
        memset(p, byte, n);
        return;
    }
    memset(p, byte, 64 * KiB);
    memset(p + n - 64 * KiB, byte, 64 * KiB);
    for (size_t off = 64 * KiB; off < n - 64 * KiB; off += 64 * KiB) p[off] = byte;
}
static int check_usable(const unsigned char *p, size_t n, unsigned char byte) {
    if (n <= BIG_STRIDE_LIMIT) {
        for (size_t i = 0; i < n; i++)
            if (p[i] != byte) return 0;
        return 1;
    }
    for (size_t i = 0; i < 64 * KiB; i++)
        if (p[i] != byte || p[n - 64 * KiB + i] != byte) return 0;
    for (size_t off = 64 * KiB; off < n - 64 * KiB; off += 64 * KiB)
        if (p[off] != byte) return 0;
    return 1;
}

/* Default alignment promised by glibc on x86-64: 16 from 16 bytes up, and
 * for tinier requests at least the largest power of two <= size. */
static size_t min_align_for(size_t n) {
    if (n >= 16) return 16;
    size_t a = 1;
    while (a * 2 <= n) a *= 2;
    return a;
}

typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);

static int section_on(const char *name) {
    /* match whole comma-separated words */
    size_t n = strlen(name);
    const char *s = opt_skip;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && !strncmp(s, name, n)) return 0;
        if (!e) break;
        s = e + 1;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* basic: malloc(0), free(NULL), usable_size(NULL), realloc(NULL/0)    */

static void sec_basic(uint64_t seed) {
    (void)seed;
    void *a = t_escape(malloc(t_opaque(0)));
    void *b = t_escape(malloc(t_opaque(0)));
    CHECK(a != NULL, "malloc(0) returned NULL");
    CHECK(b != NULL, "malloc(0) returned NULL (second call)");
    CHECK(a != b, "two live malloc(0) returned the same pointer %p", a);
    free(a);
    free(b);

    /* many malloc(0) live at once: all distinct */
    enum { NZ = 512 };
    void *z[NZ];
    for (int i = 0; i < NZ; i++) z[i] = t_escape(malloc(t_opaque(0)));
    for (int i = 0; i < NZ; i++) {
        CHECK(z[i] != NULL, "malloc(0) #%d returned NULL", i);
        for (int j = 0; j < i; j++)
            if (z[i] && z[i] == z[j]) {
                CHECK(0, "malloc(0) #%d and #%d both returned %p", i, j, z[i]);
                break;
            }
    }
    for (int i = 0; i < NZ; i++) free(z[i]);

    free(t_escape(NULL));
    CHECK(malloc_usable_size(t_escape(NULL)) == 0, "malloc_usable_size(NULL) = %zu, want 0",
          malloc_usable_size(NULL));

    /* realloc(NULL, n) behaves as malloc(n) */
    for (size_t n = 0; n <= 300 * KiB; n = n ? n * 3 + 1 : 1) {
        unsigned char *p = t_escape(realloc(NULL, t_opaque(n)));
        CHECK(p != NULL, "realloc(NULL, %zu) returned NULL", n);
        if (!p) continue;
        CHECK(malloc_usable_size(p) >= n, "realloc(NULL, %zu): usable %zu", n, malloc_usable_size(p));
        CHECK((uintptr_t)p % min_align_for(n) == 0, "realloc(NULL, %zu)=%p misaligned", n, (void *)p);
        memset(p, 0x5a, n);
        free(p);
    }

    /* realloc(p, 0): glibc frees p and returns NULL. */
    static const size_t zsz[] = {1, 16, 100, 4096, 70000, 1 * MiB};
    for (size_t i = 0; i < sizeof zsz / sizeof zsz[0]; i++) {
        void *p = t_escape(malloc(zsz[i]));
        CHECK(p != NULL, "malloc(%zu) returned NULL", zsz[i]);
        errno = 0;
        void *q = t_escape(realloc(p, t_opaque(0)));
        if (opt_glibc_realloc0) {
            CHECK(q == NULL, "realloc(p[%zu], 0) returned %p; glibc frees and returns NULL", zsz[i], q);
        }
        free(q); /* NULL or a fresh minimal block, either way freeable */
    }

    /* default alignment of plain malloc */
    for (size_t n = 1; n <= 4096; n += (n < 64 ? 1 : 61)) {
        void *p = t_escape(malloc(n));
        CHECK(p && (uintptr_t)p % min_align_for(n) == 0, "malloc(%zu)=%p not aligned to %zu", n, p,
              min_align_for(n));
        free(p);
    }
}

/* ------------------------------------------------------------------ */
/* huge: every entry point returns NULL + ENOMEM on impossible sizes   */

static void expect_enomem(void *p, const char *what, size_t arg) {
    int e = errno;
    CHECK(p == NULL, "%s(%#zx) returned %p, want NULL", what, arg, p);
    CHECK(e == ENOMEM, "%s(%#zx): errno %d (%s), want ENOMEM", what, arg, e, strerror(e));
    if (p) free(p);
}

static void sec_huge(uint64_t seed) {
    (void)seed;
    const size_t huge[] = {
        SIZE_MAX,           SIZE_MAX - 1,          SIZE_MAX - 15,
        SIZE_MAX - 4095,    SIZE_MAX - 64 * KiB,   SIZE_MAX - 1 * MiB,
        SIZE_MAX - 4 * MiB, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
        (size_t)PTRDIFF_MAX - 4095, (size_t)1 << 62,
    };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        size_t n = t_opaque(huge[i]);
        errno = 0; expect_enomem(malloc(n), "malloc", n);
        errno = 0; expect_enomem(calloc(1, n), "calloc(1,n)", n);
        errno = 0; expect_enomem(calloc(n, 1), "calloc(n,1)", n);
        errno = 0; expect_enomem(aligned_alloc(64, n), "aligned_alloc(64,n)", n);
        errno = 0; expect_enomem(aligned_alloc(1 * MiB, n), "aligned_alloc(1M,n)", n);
        errno = 0; expect_enomem(memalign(4096, n), "memalign(4096,n)", n);
        if (section_on("valloc")) {
            errno = 0; expect_enomem(valloc(n), "valloc", n);
            errno = 0; expect_enomem(pvalloc(n), "pvalloc", n);
        }
        void *m = (void *)0x1234;
        int r = posix_memalign(&m, 64, n);
        CHECK(r == ENOMEM, "posix_memalign(64, %#zx) returned %d, want ENOMEM", n, r);
        CHECK(m == (void *)0x1234, "posix_memalign(64, %#zx) wrote *memptr=%p on error", n, m);
        if (r == 0) free(m);

        /* realloc to a huge size fails and leaves the block untouched */
        unsigned char *p = malloc(100);
        t_fill(p, 100, 77);
        errno = 0;
        void *q = realloc(p, n);
        expect_enomem(q, "realloc(p,n)", n);
        CHECK(t_verify(p, 100, 77) == (size_t)-1, "failed realloc(p, %#zx) changed the old block", n);
        free(p);
    }
}

/* ------------------------------------------------------------------ */
/* calloc: zeroing (also of recycled dirty memory) and overflow        */

static void sec_calloc(uint64_t seed) {
    static const size_t sizes[] = {1,     7,     16,    24,    100,    1000,   2048,   2049,
                                   4096,  5000,  32768, 50000, 65537,  200000, 262144, 262145,
                                   300000, 1 * MiB, 2 * MiB + 3};
    t_rng r = {seed};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        int rounds = n > 256 * KiB ? 2 : 6;
        int K = n > 256 * KiB ? 3 : 8;
        for (int round = 0; round < rounds; round++) {
            /* dirty several blocks of the class, free them, then calloc */
            unsigned char *d[8];
            for (int k = 0; k < K; k++) {
                d[k] = t_escape(malloc(n));
                CHECK(d[k] != NULL, "malloc(%zu) NULL", n);
                if (d[k]) memset(d[k], 0xAA, malloc_usable_size(d[k]));
            }
            for (int k = 0; k < K; k++) free(d[k]);
            for (int k = 0; k < K; k++) {
                size_t nmemb, sz;
                switch ((round + k) % 3) {
                case 0: nmemb = n; sz = 1; break;
                case 1: nmemb = 1; sz = n; break;
                default:
                    sz = (n % 8 == 0) ? 8 : 1;
                    nmemb = n / sz;
                    break;
                }
                unsigned char *c = t_escape(calloc(nmemb, sz));
                d[k] = c;
                CHECK(c != NULL, "calloc(%zu,%zu) NULL", nmemb, sz);
                if (!c) continue;
                size_t bad = (size_t)-1;
                for (size_t j = 0; j < n; j++)
                    if (c[j]) { bad = j; break; }
                CHECK(bad == (size_t)-1, "calloc(%zu,%zu) byte %zu is %#x, not zero (round %d)", nmemb,
                      sz, bad, bad == (size_t)-1 ? 0 : c[bad], round);
                CHECK((uintptr_t)c % min_align_for(n) == 0, "calloc(%zu)=%p misaligned", n, (void *)c);
                memset(c, 0xAA, n);
            }
            for (int k = 0; k < K; k++) free(d[k]);
        }
        (void)t_next(&r);
    }
    /* calloc(0, x) and calloc(x, 0) return freeable pointers */
    void *a = t_escape(calloc(t_opaque(0), 16)), *b = t_escape(calloc(16, t_opaque(0)));
    CHECK(a != NULL && b != NULL, "calloc with a zero count returned NULL");
    free(a);
    free(b);

    /* overflow of nmemb*size */
    const size_t ov[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32}, {((size_t)1 << 33) + 1, (size_t)1 << 31},
        {SIZE_MAX / 3 + 1, 3}, {65537, SIZE_MAX / 65536},
    };
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        errno = 0;
        void *p = t_escape(calloc(t_opaque(ov[i][0]), t_opaque(ov[i][1])));
        int e = errno;
        CHECK(p == NULL, "calloc(%#zx, %#zx) overflow returned %p", ov[i][0], ov[i][1], p);
        CHECK(e == ENOMEM, "calloc(%#zx, %#zx) overflow: errno %d, want ENOMEM", ov[i][0], ov[i][1], e);
        free(p);
    }
}

/* ------------------------------------------------------------------ */
/* reallocarray                                                        */

static void sec_reallocarray(uint64_t seed) {
    unsigned char *p = t_escape(reallocarray(NULL, 10, 10));
    CHECK(p != NULL, "reallocarray(NULL,10,10) NULL");
    if (!p) return;
    t_fill(p, 100, seed);
    p = t_escape(reallocarray(p, 1000, 100));
    CHECK(p != NULL, "reallocarray grow NULL");
    if (!p) return;
    CHECK(t_verify(p, 100, seed) == (size_t)-1, "reallocarray grow lost contents");
    t_fill(p, 100000, seed + 1);

    const size_t ov[][2] = {{SIZE_MAX / 2 + 1, 2}, {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32},
                            {3, SIZE_MAX / 3 + 1}};
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        errno = 0;
        void *q = t_escape(reallocarray(p, t_opaque(ov[i][0]), t_opaque(ov[i][1])));
        int e = errno;
        CHECK(q == NULL, "reallocarray(p, %#zx, %#zx) overflow returned %p", ov[i][0], ov[i][1], q);
        CHECK(e == ENOMEM, "reallocarray overflow errno %d, want ENOMEM", e);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
        CHECK(t_verify(p, 100000, seed + 1) == (size_t)-1, "failed reallocarray touched the old block");
#pragma GCC diagnostic pop
        if (q) p = q;
    }
    errno = 0;
    void *q = t_escape(reallocarray(NULL, t_opaque(SIZE_MAX / 2 + 1), 2));
    CHECK(q == NULL && errno == ENOMEM, "reallocarray(NULL, overflow) = %p errno %d", q, errno);
    p = t_escape(reallocarray(p, 10, 1));
    CHECK(p != NULL, "reallocarray shrink NULL");
    if (p) CHECK(t_verify(p, 10, seed + 1) == (size_t)-1, "reallocarray shrink lost contents");
    free(p);
}

/* ------------------------------------------------------------------ */
/* posix_memalign error handling                                       */

static void sec_posix_memalign(uint64_t seed) {
    (void)seed;
    const size_t bad[] = {0, 1, 2, 3, sizeof(void *) / 2, 12, 24, 48, 100, 4097, 3 * 4096,
                          ((size_t)1 << 20) + 8, SIZE_MAX, SIZE_MAX / 2};
    void *const sentinel = (void *)(uintptr_t)0xdeadbeefcafe0000ull;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t n = 0; n <= 256; n = n ? n * 16 : 1) {
            void *m = sentinel;
            int r = posix_memalign(&m, t_opaque(bad[i]), n);
            CHECK(r == EINVAL, "posix_memalign(align=%zu, %zu) returned %d, want EINVAL", bad[i], n, r);
            CHECK(m == sentinel, "posix_memalign(align=%zu) wrote *memptr=%p on error", bad[i], m);
            if (r == 0 && m != sentinel) free(m);
        }
    }
    /* a power of two so large that nothing can satisfy it: error, memptr untouched */
    {
        void *m = sentinel;
        int r = posix_memalign(&m, t_opaque((size_t)1 << 62), 16);
        CHECK(r == ENOMEM || r == EINVAL, "posix_memalign(1<<62, 16) returned %d", r);
        CHECK(m == sentinel, "posix_memalign(1<<62) wrote *memptr on error");
        if (r == 0) free(m);
    }
    {
        void *m = sentinel;
        int r = posix_memalign(&m, 4096, t_opaque(SIZE_MAX - 100));
        CHECK(r == ENOMEM, "posix_memalign(4096, huge) returned %d, want ENOMEM", r);
        CHECK(m == sentinel, "posix_memalign(4096, huge) wrote *memptr on error");
    }
    /* success writes *memptr and returns 0 */
    {
        void *m = sentinel;
        int r = posix_memalign(&m, sizeof(void *), 0);
        CHECK(r == 0 && m != sentinel, "posix_memalign(8, 0) = %d, memptr %p", r, m);
        if (r == 0) free(m);
    }
}

/* ------------------------------------------------------------------ */
/* aligned: aligned_alloc / memalign / posix_memalign, 1 B .. 64 MiB   */

enum { ALLOC_ALIGNED, ALLOC_MEMALIGN, ALLOC_POSIX };
static const char *alloc_name[] = {"aligned_alloc", "memalign", "posix_memalign"};

static void *alloc_with(int how, size_t align, size_t n) {
    switch (how) {
    case ALLOC_ALIGNED: return aligned_alloc(align, n);
    case ALLOC_MEMALIGN: return memalign(align, n);
    default: {
        void *m = NULL;
        int r = posix_memalign(&m, align, n);
        return r == 0 ? m : NULL;
    }
    }
}

static void sec_aligned(uint64_t seed) {
    (void)seed;
    for (int how = 0; how < 3; how++) {
        size_t first = how == ALLOC_POSIX ? sizeof(void *) : 1;
        for (size_t a = first; a <= 64 * MiB; a *= 2) {
            size_t sizes[6] = {0, 1, a - 1, a, a + 1, 3 * a};
            unsigned char *ps[6];
            size_t us[6];
            for (int s = 0; s < 6; s++) {
                size_t n = sizes[s];
                unsigned char *p = t_escape(alloc_with(how, t_opaque(a), t_opaque(n)));
                ps[s] = p;
                us[s] = 0;
                CHECK(p != NULL, "%s(%zu, %zu) returned NULL", alloc_name[how], a, n);
                if (!p) continue;
                CHECK((uintptr_t)p % a == 0, "%s(%zu, %zu) = %p is not aligned", alloc_name[how], a, n,
                      (void *)p);
                us[s] = malloc_usable_size(p);
                CHECK(us[s] >= n, "%s(%zu, %zu): malloc_usable_size %zu < size", alloc_name[how], a, n,
                      us[s]);
                fill_usable(p, us[s], (unsigned char)(s * 37 + a));
            }
            for (int s = 0; s < 6; s++) {
                if (!ps[s]) continue;
                CHECK(check_usable(ps[s], us[s], (unsigned char)(s * 37 + a)),
                      "%s(%zu, %zu): usable bytes overwritten by a neighbour", alloc_name[how], a,
                      sizes[s]);
            }
            for (int s = 0; s < 6; s++) free(ps[s]);
        }
    }
}

/* ------------------------------------------------------------------ */
/* valloc / pvalloc                                                    */

static void sec_valloc(uint64_t seed) {
    (void)seed;
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 65536, 300000, 2 * MiB + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = t_escape(valloc(t_opaque(n)));
        CHECK(p != NULL, "valloc(%zu) NULL", n);
        if (p) {
            CHECK((uintptr_t)p % page_size == 0, "valloc(%zu)=%p not page aligned", n, (void *)p);
            size_t u = malloc_usable_size(p);
            CHECK(u >= n, "valloc(%zu): usable %zu", n, u);
            memset(p, 0x11, u);
        }
        unsigned char *q = t_escape(pvalloc(t_opaque(n)));
        CHECK(q != NULL, "pvalloc(%zu) NULL", n);
        if (q) {
            size_t want = (n + page_size - 1) / page_size * page_size;
            CHECK((uintptr_t)q % page_size == 0, "pvalloc(%zu)=%p not page aligned", n, (void *)q);
            size_t u = malloc_usable_size(q);
            CHECK(u >= want, "pvalloc(%zu): usable %zu < rounded size %zu", n, u, want);
            memset(q, 0x22, u);
        }
        if (p) {
            size_t u = malloc_usable_size(p);
            CHECK(check_usable(p, u, 0x11), "valloc(%zu) block clobbered", n);
        }
        free(p);
        free(q);
    }
}

/* ------------------------------------------------------------------ */
/* realloc: contents kept over a walk across every size boundary       */

static const size_t boundary_sizes[] = {
    1, 8, 15, 16, 17, 24, 31, 32, 33, 48, 64, 100, 127, 128, 129, 255, 256, 257, 512, 1000,
    1024, 2047, 2048, 2049, 3000, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384, 16385,
    32767, 32768, 32769, 65535, 65536, 65537, 100000, 131072, 131073, 262143, 262144, 262145,
    300000, 524288, 1048575, 1048576, 1048577, 4 * MiB, 8 * MiB + 1};
#define NBOUND (sizeof boundary_sizes / sizeof boundary_sizes[0])

static size_t pick_size(t_rng *r) {
    uint64_t x = t_below(r, 10);
    if (x < 6) return boundary_sizes[t_below(r, NBOUND)];
    if (x < 8) return 1 + t_below(r, 4096);
    if (x < 9) return 1 + t_below(r, 300 * KiB);
    return 1 + t_below(r, 3 * MiB);
}

static void sec_realloc(uint64_t seed) {
    t_rng r = {seed * 1000003};
    /* the transitions named in the brief, in order */
    static const size_t path[] = {16, 1 * MiB, 64, 2048, 2049, 300000, 262144, 262145, 100,
                                  65536, 65537, 16, 8 * MiB + 1, 1, 4096, 4097, 24};
    unsigned char *p = malloc(path[0]);
    size_t cur = path[0];
    uint64_t ps = seed;
    t_fill(p, cur, ps);
    for (size_t i = 1; i < sizeof path / sizeof path[0]; i++) {
        size_t n = path[i];
        unsigned char *q = t_escape(realloc(p, n));
        CHECK(q != NULL, "realloc(%zu -> %zu) NULL", cur, n);
        if (!q) break;
        size_t keep = cur < n ? cur : n;
        size_t bad = t_verify(q, keep, ps);
        CHECK(bad == (size_t)-1, "realloc(%zu -> %zu) lost byte %zu", cur, n, bad);
        CHECK(malloc_usable_size(q) >= n, "realloc(-> %zu): usable %zu", n, malloc_usable_size(q));
        CHECK((uintptr_t)q % min_align_for(n) == 0, "realloc(-> %zu)=%p misaligned", n, (void *)q);
        p = q;
        cur = n;
        ps = t_next(&r);
        t_fill(p, cur, ps);
    }
    free(p);

    /* random walks of several blocks at once (so moves really move) */
    enum { NB = 6, STEPS = 700 };
    unsigned char *b[NB];
    size_t bs[NB];
    uint64_t seedv[NB];
    for (int k = 0; k < NB; k++) {
        bs[k] = pick_size(&r);
        b[k] = malloc(bs[k]);
        CHECK(b[k] != NULL, "malloc(%zu) NULL", bs[k]);
        seedv[k] = t_next(&r);
        if (b[k]) t_fill(b[k], bs[k], seedv[k]);
    }
    for (int step = 0; step < STEPS; step++) {
        int k = (int)t_below(&r, NB);
        if (!b[k]) continue;
        size_t n = pick_size(&r);
        unsigned char *q = t_escape(realloc(b[k], n));
        CHECK(q != NULL, "realloc(%zu -> %zu) NULL", bs[k], n);
        if (!q) continue;
        size_t keep = bs[k] < n ? bs[k] : n;
        size_t bad = t_verify(q, keep, seedv[k]);
        CHECK(bad == (size_t)-1, "realloc(%zu -> %zu) lost byte %zu (step %d)", bs[k], n, bad, step);
        CHECK(malloc_usable_size(q) >= n, "realloc(-> %zu): usable %zu", n, malloc_usable_size(q));
        b[k] = q;
        bs[k] = n;
        /* refresh only the new tail half the time, so old data travels far */
        if (t_below(&r, 2)) {
            seedv[k] = t_next(&r);
            t_fill(q, n, seedv[k]);
        } else if (n > keep) {
            /* extend the same pattern over the grown part */
            unsigned char *tmp = malloc(n);
            t_fill(tmp, n, seedv[k]);
            memcpy(q + keep, tmp + keep, n - keep);
            free(tmp);
        }
    }
    for (int k = 0; k < NB; k++) {
        if (b[k]) CHECK(t_verify(b[k], bs[k], seedv[k]) == (size_t)-1, "realloc walk block %d corrupt", k);
        free(b[k]);
    }

    /* realloc of over-aligned blocks keeps contents */
    for (size_t a = 64; a <= 1 * MiB; a *= 8) {
        void *m = NULL;
        CHECK(posix_memalign(&m, a, 1000) == 0, "posix_memalign(%zu) failed", a);
        if (!m) continue;
        t_fill(m, 1000, a);
        unsigned char *q = realloc(m, 500000);
        CHECK(q && t_verify(q, 1000, a) == (size_t)-1, "realloc of %zu-aligned block lost data", a);
        q = realloc(q, 10);
        CHECK(q && t_verify(q, 10, a) == (size_t)-1, "realloc shrink of aligned block lost data");
        free(q);
    }
}

/* ------------------------------------------------------------------ */
/* usable: malloc_usable_size bytes are all writable and exclusive     */

static void sec_usable(uint64_t seed) {
    (void)seed;
    enum { K = 12 };
    size_t n = 1;
    while (n <= 400 * KiB) {
        unsigned char *p[K];
        size_t u[K];
        for (int k = 0; k < K; k++) {
            p[k] = t_escape(malloc(t_opaque(n)));
            CHECK(p[k] != NULL, "malloc(%zu) NULL", n);
            u[k] = p[k] ? malloc_usable_size(p[k]) : 0;
            CHECK(!p[k] || u[k] >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u[k]);
            if (p[k]) memset(p[k], (int)(k + n) & 0xff, u[k]);
        }
        for (int k = 0; k < K; k++) {
            if (!p[k]) continue;
            CHECK(check_usable(p[k], u[k], (unsigned char)((k + n) & 0xff)),
                  "malloc(%zu): usable area (%zu bytes) overlaps another block", n, u[k]);
        }
        for (int k = 0; k < K; k += 2) free(p[k]);
        for (int k = 1; k < K; k += 2) {
            if (p[k])
                CHECK(check_usable(p[k], u[k], (unsigned char)((k + n) & 0xff)),
                      "malloc(%zu): freeing a neighbour clobbered a live block", n);
            free(p[k]);
        }
        if (n < 2100) n += 1;
        else if (n < 70 * KiB) n += 997;
        else n += 13 * KiB + 7;
    }
    /* a handful of large blocks */
    static const size_t big[] = {1 * MiB, 1 * MiB + 1, 3 * MiB + 5, 16 * MiB + 1};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        unsigned char *a = malloc(big[i]), *b = malloc(big[i]);
        CHECK(a && b, "malloc(%zu) NULL", big[i]);
        if (!a || !b) { free(a); free(b); continue; }
        size_t ua = malloc_usable_size(a), ub = malloc_usable_size(b);
        CHECK(ua >= big[i] && ub >= big[i], "large usable size too small");
        memset(b, 0x3c, ub);
        memset(a, 0xc3, ua);
        CHECK(check_usable(b, ub, 0x3c), "writing usable bytes of a large block clobbered another");
        free(a);
        free(b);
    }
}

/* ------------------------------------------------------------------ */
/* c23: free_sized / free_aligned_sized                                */

static void sec_c23(uint64_t seed) {
    free_sized_fn fs = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
    free_aligned_sized_fn fas = (free_aligned_sized_fn)dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (opt_require_c23) {
        CHECK(fs != NULL, "free_sized is not provided");
        CHECK(fas != NULL, "free_aligned_sized is not provided");
    } else if (!fs || !fas) {
        if (seed == opt_seed) fprintf(stderr, "note: free_sized/free_aligned_sized not provided (not required)\n");
    }
    t_rng r = {seed};
    if (fs) {
        fs(NULL, 0);
        fs(NULL, 100);
        for (int i = 0; i < 3000; i++) {
            size_t n = pick_size(&r) % (400 * KiB);
            void *p = t_escape(malloc(n));
            CHECK(p != NULL, "malloc(%zu) NULL", n);
            if (p) memset(p, 1, n);
            fs(p, n);
        }
        for (int i = 0; i < 500; i++) {
            size_t n = 1 + t_below(&r, 8000), m = t_below(&r, 3);
            void *p = t_escape(calloc(n, m + 1));
            fs(p, n * (m + 1));
        }
    }
    if (fas) {
        fas(NULL, 64, 0);
        for (size_t a = 1; a <= 8 * MiB; a *= 2) {
            static const size_t mult[] = {1, 2, 3, 7};
            for (size_t i = 0; i < 4; i++) {
                size_t n = a * mult[i];
                void *p = t_escape(aligned_alloc(a, n));
                CHECK(p != NULL && (uintptr_t)p % a == 0, "aligned_alloc(%zu,%zu)=%p", a, n, p);
                if (p && n <= BIG_STRIDE_LIMIT) memset(p, 2, n);
                fas(p, a, n);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* libc: glibc's __libc_* aliases interoperate with malloc/free        */

typedef void *(*libc_malloc_fn)(size_t);
typedef void (*libc_free_fn)(void *);
typedef void *(*libc_calloc_fn)(size_t, size_t);
typedef void *(*libc_realloc_fn)(void *, size_t);
typedef void *(*libc_memalign_fn)(size_t, size_t);

static void sec_libc(uint64_t seed) {
    libc_malloc_fn lm = (libc_malloc_fn)dlsym(RTLD_DEFAULT, "__libc_malloc");
    libc_free_fn lf = (libc_free_fn)dlsym(RTLD_DEFAULT, "__libc_free");
    libc_calloc_fn lc = (libc_calloc_fn)dlsym(RTLD_DEFAULT, "__libc_calloc");
    libc_realloc_fn lr = (libc_realloc_fn)dlsym(RTLD_DEFAULT, "__libc_realloc");
    libc_memalign_fn lma = (libc_memalign_fn)dlsym(RTLD_DEFAULT, "__libc_memalign");
    CHECK(lm && lf && lc && lr && lma, "a __libc_* allocation entry point is missing");
    if (!(lm && lf && lc && lr && lma)) return;
    t_rng r = {seed};
    for (int i = 0; i < 400; i++) {
        size_t n = pick_size(&r) % (512 * KiB) + 1;
        uint64_t s = t_next(&r);
        /* __libc_malloc -> free */
        unsigned char *p = t_escape(lm(n));
        CHECK(p != NULL, "__libc_malloc(%zu) NULL", n);
        if (p) {
            CHECK(malloc_usable_size(p) >= n, "usable of __libc_malloc block");
            t_fill(p, n, s);
            /* realloc (ours) then __libc_realloc */
            p = realloc(p, n + 100);
            CHECK(p && t_verify(p, n, s) == (size_t)-1, "realloc of __libc_malloc block lost data");
            p = t_escape(lr(p, n / 2 + 1));
            CHECK(p && t_verify(p, n / 2 + 1, s) == (size_t)-1, "__libc_realloc lost data");
            free(p);
        }
        /* malloc -> __libc_free */
        p = t_escape(malloc(n));
        if (p) memset(p, 3, n);
        lf(p);
        /* __libc_calloc zeroed -> free */
        unsigned char *c = t_escape(lc(1, n));
        CHECK(c != NULL, "__libc_calloc NULL");
        if (c) {
            size_t bad = (size_t)-1;
            for (size_t j = 0; j < n; j++)
                if (c[j]) { bad = j; break; }
            CHECK(bad == (size_t)-1, "__libc_calloc(1,%zu) not zeroed at %zu", n, bad);
        }
        free(c);
        /* __libc_memalign -> free, posix_memalign -> __libc_free */
        size_t a = (size_t)1 << (4 + t_below(&r, 13));
        void *m = t_escape(lma(a, n));
        CHECK(m && (uintptr_t)m % a == 0, "__libc_memalign(%zu,%zu)=%p", a, n, m);
        free(m);
        m = NULL;
        CHECK(posix_memalign(&m, a, n) == 0, "posix_memalign(%zu,%zu) failed", a, n);
        lf(m);
    }
    lf(NULL);
}

/* ------------------------------------------------------------------ */
/* mallctl: mallopt, malloc_trim, mallinfo, mallinfo2                  */

static void sec_mallctl(uint64_t seed) {
    (void)seed;
    int v;
    v = mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    CHECK(v == 0 || v == 1, "mallopt(M_MMAP_THRESHOLD) returned %d", v);
    v = mallopt(M_TRIM_THRESHOLD, 1 << 20);
    CHECK(v == 0 || v == 1, "mallopt(M_TRIM_THRESHOLD) returned %d", v);
    v = mallopt(12345, 1);
    CHECK(v == 0 || v == 1, "mallopt(unknown) returned %d", v);
    void *keep = malloc(100000);
    v = malloc_trim(0);
    CHECK(v == 0 || v == 1, "malloc_trim(0) returned %d", v);
    v = malloc_trim(1 << 20);
    CHECK(v == 0 || v == 1, "malloc_trim(1M) returned %d", v);
    free(keep);

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo mi = mallinfo();
#pragma GCC diagnostic pop
    /* int fields wrap past 2 GiB (documented glibc behaviour), and other
     * threads may hold that much in the concurrent phase: check only in
     * the single-threaded pass. */
    if (!in_threads) CHECK(mi.arena >= 0 && mi.ordblks >= 0 && mi.hblks >= 0 && mi.hblkhd >= 0 && mi.uordblks >= 0 &&
              mi.fordblks >= 0 && mi.keepcost >= 0,
          "mallinfo has negative fields");
    struct mallinfo2 m2 = mallinfo2();
    (void)m2;
}

/* Two readings of mallinfo2 are accepted:
 *  glibc's: uordblks = in-use bytes outside mmapped chunks, hblkhd = bytes
 *           in mmapped chunks (so live bytes = uordblks + hblkhd);
 *  the man page's: uordblks = all in-use bytes, hblkhd = the mmapped part
 *           of them (so live bytes = uordblks).
 * Either way the live bytes must follow a 10 MiB allocation and its free. */
static int live_delta_ok(struct mallinfo2 a, struct mallinfo2 b, size_t want, size_t slack, ssize_t *shown) {
    ssize_t du = (ssize_t)b.uordblks - (ssize_t)a.uordblks;
    ssize_t dh = (ssize_t)b.hblkhd - (ssize_t)a.hblkhd;
    ssize_t lo = (ssize_t)want, hi = (ssize_t)(want + slack);
    *shown = du + dh;
    if (du + dh >= lo && du + dh <= hi) return 1; /* glibc reading */
    if (du >= lo && du <= hi && dh <= du) {      /* man-page reading */
        *shown = du;
        return 1;
    }
    return 0;
}
static int consistent(struct mallinfo2 m) { return m.uordblks <= m.arena + m.hblkhd; }

static void mallinfo_accounting(void) {
    const size_t TEN = 10 * MiB;
    ssize_t d;
    struct mallinfo2 before = mallinfo2();
    CHECK(consistent(before), "mallinfo2: uordblks %zu > arena %zu + hblkhd %zu", before.uordblks, before.arena,
          before.hblkhd);
    unsigned char *big = t_escape(malloc(TEN));
    memset(big, 1, TEN);
    struct mallinfo2 after = mallinfo2();
    CHECK(live_delta_ok(before, after, TEN, 2 * MiB, &d),
          "mallinfo2: one live 10 MiB block moved uordblks by %zd and hblkhd by %zd bytes (want live bytes +10 MiB "
          "in uordblks+hblkhd, or in uordblks alone)",
          (ssize_t)after.uordblks - (ssize_t)before.uordblks, (ssize_t)after.hblkhd - (ssize_t)before.hblkhd);
    CHECK(consistent(after), "mallinfo2: uordblks %zu > arena %zu + hblkhd %zu", after.uordblks, after.arena,
          after.hblkhd);
    free(big);
    struct mallinfo2 freed = mallinfo2();
    CHECK(live_delta_ok(freed, before, 0, 1 * MiB, &d) || live_delta_ok(before, freed, 0, 1 * MiB, &d),
          "mallinfo2: after free, uordblks is %zd and hblkhd %zd bytes off the start",
          (ssize_t)freed.uordblks - (ssize_t)before.uordblks, (ssize_t)freed.hblkhd - (ssize_t)before.hblkhd);

    enum { N = 1024 };
    static void *blk[N];
    before = mallinfo2();
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(TEN / N);
        memset(blk[i], 1, TEN / N);
    }
    after = mallinfo2();
    CHECK(live_delta_ok(before, after, TEN, TEN / 4, &d),
          "mallinfo2: 1024 live 10 KiB blocks moved uordblks by %zd and hblkhd by %zd bytes",
          (ssize_t)after.uordblks - (ssize_t)before.uordblks, (ssize_t)after.hblkhd - (ssize_t)before.hblkhd);
    CHECK(consistent(after), "mallinfo2: uordblks %zu > arena %zu + hblkhd %zu", after.uordblks, after.arena,
          after.hblkhd);
    for (int i = 0; i < N; i++) free(blk[i]);
}

/* ------------------------------------------------------------------ */
/* exports                                                             */

static void check_exports(void) {
    static const char *syms[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized",
        "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
        "malloc_trim", "mallopt", "mallinfo", "mallinfo2"};
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        CHECK(t_symbol_from(syms[i], opt_lib, 0), "%s is not exported by %s", syms[i], opt_lib);
}

/* ------------------------------------------------------------------ */

typedef void (*section_fn)(uint64_t);
static const struct {
    const char *name;
    section_fn fn;
    int threaded;
} sections[] = {
    {"basic", sec_basic, 1},         {"huge", sec_huge, 1},       {"calloc", sec_calloc, 1},
    {"reallocarray", sec_reallocarray, 1},
    {"posix_memalign", sec_posix_memalign, 1},
    {"aligned", sec_aligned, 1},     {"valloc", sec_valloc, 1},   {"realloc", sec_realloc, 1},
    {"usable", sec_usable, 1},       {"c23", sec_c23, 1},         {"libc", sec_libc, 1},
    {"mallctl", sec_mallctl, 1},
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

static void *thread_main(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    in_threads = 1;
    for (size_t i = 0; i < NSECTIONS; i++) {
        size_t j = (i + seed) % NSECTIONS; /* threads start on different sections */
        if (sections[j].threaded && section_on(sections[j].name)) sections[j].fn(seed * 7919 + j);
    }
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--expect-lib") && i + 1 < argc) opt_lib = argv[++i];
        else if (!strcmp(a, "--require-exports")) opt_require_exports = 1;
        else if (!strcmp(a, "--require-c23")) opt_require_c23 = 1;
        else if (!strcmp(a, "--glibc-realloc0")) opt_glibc_realloc0 = 1;
        else if (!strcmp(a, "--mallinfo-accounting")) opt_mallinfo = 1;
        else if (!strcmp(a, "--strict"))
            opt_require_exports = opt_require_c23 = opt_glibc_realloc0 = opt_mallinfo = 1;
        else if (!strcmp(a, "--skip") && i + 1 < argc) snprintf(opt_skip, sizeof opt_skip, "%s", argv[++i]);
        else if (!strcmp(a, "--threads") && i + 1 < argc) opt_threads = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "edge: unknown argument %s\n", a);
            return 2;
        }
    }
    if (opt_require_exports && !opt_lib) {
        fprintf(stderr, "edge: --require-exports needs --expect-lib\n");
        return 2;
    }
    t_arm_alarm("edge", 240);
    page_size = (size_t)sysconf(_SC_PAGESIZE);

    t_check_loaded(opt_lib);
    if (opt_require_exports) check_exports();

    for (size_t i = 0; i < NSECTIONS; i++) {
        if (!section_on(sections[i].name)) {
            fprintf(stderr, "edge: section %s skipped\n", sections[i].name);
            continue;
        }
        long before = T_FAIL_GET();
        fprintf(stderr, "edge: section %s\n", sections[i].name);
        sections[i].fn(opt_seed);
        if (T_FAIL_GET() != before) fprintf(stderr, "edge: section %s FAILED\n", sections[i].name);
    }
    if (opt_mallinfo) {
        fprintf(stderr, "edge: section mallinfo-accounting\n");
        mallinfo_accounting();
    }

    if (opt_threads > 0) {
        fprintf(stderr, "edge: all sections in %d threads at once\n", opt_threads);
        pthread_t th[256];
        int nt = opt_threads > 256 ? 256 : opt_threads;
        for (int t = 0; t < nt; t++) {
            int rc = pthread_create(&th[t], NULL, thread_main, (void *)(uintptr_t)(opt_seed + 1 + t));
            CHECK(rc == 0, "pthread_create failed: %d", rc);
            if (rc) { nt = t; break; }
        }
        for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    }

    /* checked again at the end: a library that unloads or swaps is caught */
    t_check_loaded(opt_lib);
    long f = T_FAIL_GET();
    if (f) {
        fprintf(stderr, "edge: %ld check(s) FAILED\n", f);
        return 1;
    }
    printf("edge: all checks passed\n");
    return 0;
}
