// Exhaustion: run under an address-space limit (RLIMIT_AS, set by the test
// driver before exec, so it applies from hz3's first mapping on).
//
//   exhaust [--expect-lib NAME] [--max-mib N]
//   exhaust --probe            one malloc, then exit (the driver reads HZ3_PRINT_CONFIG)
//
// 1. Fill memory until allocation fails: large blocks (1 MiB) until malloc
//    returns NULL, then medium blocks (64 KiB), then small ones (256 B). Each
//    failure must be NULL with errno ENOMEM. The blocks are chained through
//    their first word, so the bookkeeping needs no memory. --max-mib bounds
//    the fill: going past it means the limit had no effect (a failure).
// 2. With nothing left, every entry point must fail cleanly: malloc, calloc,
//    realloc (old block intact), reallocarray, aligned_alloc, posix_memalign
//    (ENOMEM, *memptr untouched), memalign, valloc, pvalloc, __libc_malloc,
//    operator new / new[] / aligned new (std::bad_alloc, after calling the
//    new-handler), nothrow new (nullptr).
// 3. Free everything; then allocation works again: the same sizes, and a
//    bigger block (32 MiB) that only fits because memory was given back.
// 4. Fill again, small blocks first: the arena runs out and small requests
//    spill into mappings of their own until those run out too.
// 5. Free, and a third fill in the first order must get about as far as the
//    first one (nothing leaked).
//
// Prints "exhaust: all checks passed" at the end; FAIL lines otherwise.
#include "common.h"

/* The old block is checked after a failed realloc, on purpose. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#include <fcntl.h>
#include <malloc.h>

#include <initializer_list>
#include <new>

extern "C" void *__libc_malloc(size_t);

static size_t max_bytes = size_t(4) << 30;

struct Fill {
    void *head = nullptr;
    size_t count = 0;
    size_t bytes = 0;
    int err = 0;
};

// Allocates blocks of `size` until malloc fails (or `cap` bytes in all).
static Fill fill(size_t size, size_t *total) {
    Fill f;
    for (;;) {
        if (*total + size > max_bytes) {
            CHECK(0, "allocated %zu MiB of %zu-byte blocks without running out: the address-space limit had no effect",
                  *total >> 20, size);
            break;
        }
        errno = 0;
        void *p = malloc(size);
        if (!p) {
            f.err = errno;
            break;
        }
        *(void **)p = f.head;
        f.head = p;
        f.count++;
        f.bytes += size;
        *total += size;
    }
    CHECK(f.err == ENOMEM, "malloc(%zu) failed with errno %d, not ENOMEM", size, f.err);
    return f;
}

static void release(Fill &f) {
    void *p = f.head;
    while (p) {
        void *n = *(void **)p;
        free(p);
        p = n;
    }
    f = Fill();
}

// VmSize and VmPeak from /proc/self/status, read without allocating.
static void print_vm(const char *when) {
    static char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    const char *peak = strstr(buf, "VmPeak:"), *size = strstr(buf, "VmSize:");
    long kp = peak ? atol(peak + 7) : -1, ks = size ? atol(size + 7) : -1;
    printf("%s: VmSize %ld MiB, VmPeak %ld MiB\n", when, ks >> 10, kp >> 10);
}

static int handler_calls;
static void on_new_failure() {
    handler_calls++;
    std::set_new_handler(nullptr); // next failure throws
}

#define EXPECT_NULL_ENOMEM(call, what)                                                   \
    do {                                                                                 \
        errno = 0;                                                                       \
        void *q_ = (call);                                                               \
        int e_ = errno;                                                                  \
        CHECK(q_ == nullptr, "%s succeeded under exhaustion (%p)", what, q_);            \
        CHECK(q_ != nullptr || e_ == ENOMEM, "%s: NULL but errno %d, not ENOMEM", what, e_); \
        if (q_) free(q_);                                                                \
    } while (0)

template <class F>
static void expect_bad_alloc(F f, const char *what, bool handler) {
    handler_calls = 0;
    if (handler) std::set_new_handler(on_new_failure);
    bool threw = false;
    try {
        void *p = f();
        CHECK(0, "%s returned %p under exhaustion", what, p);
    } catch (const std::bad_alloc &) {
        threw = true;
    } catch (...) {
        CHECK(0, "%s threw something other than std::bad_alloc", what);
    }
    std::set_new_handler(nullptr);
    CHECK(threw, "%s did not throw std::bad_alloc", what);
    if (handler) CHECK(handler_calls == 1, "%s called the new-handler %d times, expected once", what, handler_calls);
}

static void all_entry_points_fail(void *small_block) {
    const size_t big = size_t(8) << 20;
    EXPECT_NULL_ENOMEM(malloc(t_opaque(big)), "malloc(8 MiB)");
    EXPECT_NULL_ENOMEM(malloc(t_opaque(256)), "malloc(256) (its class was filled)");
    EXPECT_NULL_ENOMEM(calloc(1, t_opaque(big)), "calloc(1, 8 MiB)");
    EXPECT_NULL_ENOMEM(calloc(t_opaque(256), 1), "calloc(256, 1)");
    EXPECT_NULL_ENOMEM(aligned_alloc(4096, t_opaque(big)), "aligned_alloc(4096, 8 MiB)");
    EXPECT_NULL_ENOMEM(aligned_alloc(1 << 20, t_opaque(big)), "aligned_alloc(1 MiB, 8 MiB)");
    EXPECT_NULL_ENOMEM(memalign(65536, t_opaque(big)), "memalign(64 KiB, 8 MiB)");
    EXPECT_NULL_ENOMEM(valloc(t_opaque(big)), "valloc(8 MiB)");
    EXPECT_NULL_ENOMEM(pvalloc(t_opaque(big)), "pvalloc(8 MiB)");
    EXPECT_NULL_ENOMEM(__libc_malloc(t_opaque(big)), "__libc_malloc(8 MiB)");

    void *sentinel = (void *)0x5151, *mp = sentinel;
    int r = posix_memalign(&mp, 64, t_opaque(big));
    CHECK(r == ENOMEM, "posix_memalign(64, 8 MiB) returned %d, not ENOMEM", r);
    CHECK(mp == sentinel, "posix_memalign wrote *memptr (%p) on failure", mp);
    if (r == 0 && mp != sentinel) free(mp);

    // realloc / reallocarray: NULL, the old block still intact.
    memset((char *)small_block + 8, 0x6b, 248);
    EXPECT_NULL_ENOMEM(realloc(small_block, t_opaque(big)), "realloc(small, 8 MiB)");
    EXPECT_NULL_ENOMEM(reallocarray(small_block, t_opaque(2), big / 2), "reallocarray(small, 2, 4 MiB)");
    for (int i = 8; i < 256; i++)
        if (((unsigned char *)small_block)[i] != 0x6b) {
            CHECK(0, "the old block changed at byte %d after a failed realloc", i);
            break;
        }

    expect_bad_alloc([&] { return ::operator new(t_opaque(big)); }, "operator new(8 MiB)", true);
    expect_bad_alloc([&] { return ::operator new[](t_opaque(big)); }, "operator new[](8 MiB)", false);
    expect_bad_alloc([&] { return ::operator new(t_opaque(big), std::align_val_t(4096)); },
                     "operator new(8 MiB, align 4096)", true);
    expect_bad_alloc([&] { return (void *)new char[t_opaque(256)]; }, "new char[256] (class filled)", false);
    void *nt = ::operator new(t_opaque(big), std::nothrow);
    CHECK(nt == nullptr, "nothrow operator new returned %p under exhaustion", nt);
    if (nt) ::operator delete(nt);
    void *nta = ::operator new[](t_opaque(big), std::align_val_t(256), std::nothrow);
    CHECK(nta == nullptr, "nothrow aligned operator new[] returned %p under exhaustion", nta);
}

int main(int argc, char **argv) {
    const char *expect_lib = nullptr;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expect-lib") && i + 1 < argc) expect_lib = argv[++i];
        else if (!strcmp(argv[i], "--max-mib") && i + 1 < argc) max_bytes = size_t(atol(argv[++i])) << 20;
        else if (!strcmp(argv[i], "--probe")) {
            free(t_escape(malloc(16)));
            return 0;
        }
        else {
            fprintf(stderr, "usage: exhaust [--expect-lib NAME] [--max-mib N]\n");
            return 2;
        }
    }
    t_arm_alarm("exhaust", 120);
    t_check_loaded(expect_lib);

    print_vm("start");
    // A live block for the failed reallocs of step 2, taken before the fill:
    // the fill may leave no room for even one small block.
    void *keep = malloc(256);
    CHECK(keep != nullptr, "malloc(256) failed before the fill");

    // 1. fill: large blocks first (mappings outside the arena), then the
    //    arena with medium and small blocks.
    size_t total = 0;
    Fill large = fill(1 << 20, &total);
    Fill medium = fill(64 << 10, &total);
    Fill small = fill(256, &total);
    print_vm("exhausted");
    printf("first fill: %zu x 1 MiB, %zu x 64 KiB, %zu x 256 B (%zu MiB)\n", large.count, medium.count,
           small.count, total >> 20);
    CHECK(total >= (size_t(64) << 20), "only %zu MiB allocated before running out", total >> 20);

    // 2. everything fails cleanly
    all_entry_points_fail(keep);
    printf("exhausted: every entry point failed cleanly\n");

    // 3. release and allocate again
    release(large);
    release(medium);
    release(small);
    free(keep);
    for (size_t size : {size_t(256), size_t(64) << 10, size_t(1) << 20, size_t(32) << 20}) {
        errno = 0;
        void *p = malloc(size);
        CHECK(p != nullptr, "malloc(%zu) fails after everything was freed (errno %d)", size, errno);
        if (p) {
            memset(p, 0x33, size);
            free(p);
        }
    }
    void *v = ::operator new(size_t(16) << 20);
    memset(v, 1, size_t(16) << 20);
    ::operator delete(v);

    // 4. the other order: small blocks first fill the arena, then spill into
    //    mappings of their own (the arena-exhausted fallback) until none is left.
    size_t total2 = 0;
    Fill small2 = fill(256, &total2);
    Fill medium2 = fill(64 << 10, &total2);
    Fill large2 = fill(1 << 20, &total2);
    printf("second fill (small first): %zu x 256 B, %zu x 64 KiB, %zu x 1 MiB (%zu MiB)\n", small2.count,
           medium2.count, large2.count, total2 >> 20);
    EXPECT_NULL_ENOMEM(malloc(t_opaque(size_t(8) << 20)), "malloc(8 MiB) after the second fill");
    release(large2);
    release(medium2);
    release(small2);

    // 5. the first order again: as far as the first time (nothing leaked).
    size_t total3 = 0;
    Fill large3 = fill(1 << 20, &total3);
    Fill medium3 = fill(64 << 10, &total3);
    Fill small3 = fill(256, &total3);
    printf("third fill: %zu x 1 MiB, %zu x 64 KiB, %zu x 256 B (%zu MiB)\n", large3.count, medium3.count,
           small3.count, total3 >> 20);
    CHECK(total3 + (total3 >> 3) + (8 << 20) >= total,
          "the third fill got %zu MiB, the first %zu MiB: memory was lost", total3 >> 20, total >> 20);
    release(large3);
    release(medium3);
    release(small3);
    print_vm("end");

    long f = T_FAIL_GET();
    if (f) {
        fprintf(stderr, "exhaust: %ld check(s) failed\n", f);
        return 1;
    }
    printf("exhaust: all checks passed\n");
    return 0;
}
