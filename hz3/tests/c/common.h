/* Shared helpers for the hz3 LD_PRELOAD test programs.
 *
 * Every check that fails prints one line "FAIL <file>:<line>: <what>" on
 * stderr and bumps a global counter; main() turns a non-zero counter into a
 * non-zero exit status.  Nothing here allocates except through the
 * allocator under test, on purpose.
 */
#ifndef HZ3_TEST_COMMON_H
#define HZ3_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
#include <atomic>
static std::atomic<long> t_failures{0};
static std::atomic<int> t_line_fails[8192];
#define T_LINE_INC(l) (t_line_fails[(l) & 8191].fetch_add(1) + 1)
#define T_FAIL_INC() (t_failures.fetch_add(1) + 1)
#define T_FAIL_GET() (t_failures.load())
#else
#include <stdatomic.h>
static atomic_long t_failures;
static atomic_int t_line_fails[8192];
#define T_LINE_INC(l) (atomic_fetch_add(&t_line_fails[(l) & 8191], 1) + 1)
#define T_FAIL_INC() (atomic_fetch_add(&t_failures, 1) + 1)
#define T_FAIL_GET() (atomic_load(&t_failures))
#endif

/* Print at most T_PER_LINE failures per check and T_MAX_PRINTED in all,
 * so a systematic bug does not flood the log; the count keeps going. */
#define T_MAX_PRINTED 200
#define T_PER_LINE 4

static void t_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void t_fail(const char *file, int line, const char *fmt, ...) {
    long n = T_FAIL_INC();
    int nl = T_LINE_INC(line);
    if (nl > T_PER_LINE) {
        if (nl == T_PER_LINE + 1) fprintf(stderr, "FAIL %s:%d: ... (more failures of this check not printed)\n", file, line);
        return;
    }
    if (n > T_MAX_PRINTED) {
        if (n == T_MAX_PRINTED + 1)
            fprintf(stderr, "FAIL ... (further failures not printed)\n");
        return;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, buf);
}

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) t_fail(__FILE__, __LINE__, __VA_ARGS__);              \
    } while (0)

/* Keep the compiler from reasoning about a pointer's value or from
 * deleting an allocation whose result looks unused. */
static inline void *t_escape(void *p) {
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}
static inline size_t t_opaque(size_t v) {
    __asm__ volatile("" : "+r"(v));
    return v;
}

/* splitmix64: deterministic, cheap, good enough for test data. */
static inline uint64_t t_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
typedef struct { uint64_t s; } t_rng;
static inline uint64_t t_next(t_rng *r) { return t_mix(r->s++); }
static inline uint64_t t_below(t_rng *r, uint64_t n) { return n ? t_next(r) % n : 0; }

/* Pattern: byte i of a block seeded with `seed` is byte (i%8) of
 * t_mix(seed + i/8).  Written and checked eight bytes at a time. */
__attribute__((unused)) static void t_fill(void *p, size_t n, uint64_t seed) {
    unsigned char *c = (unsigned char *)p;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w = t_mix(seed + k / 8);
        __builtin_memcpy(c + k, &w, 8);
    }
    if (k < n) {
        uint64_t w = t_mix(seed + k / 8);
        __builtin_memcpy(c + k, &w, n - k);
    }
}
/* Returns the offset of the first wrong byte, or (size_t)-1 if all good. */
__attribute__((unused)) static size_t t_verify(const void *p, size_t n, uint64_t seed) {
    const unsigned char *c = (const unsigned char *)p;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w = t_mix(seed + k / 8), got;
        __builtin_memcpy(&got, c + k, 8);
        if (got != w) {
            for (size_t j = 0; j < 8; j++)
                if (((w >> (8 * j)) & 0xff) != c[k + j]) return k + j;
        }
    }
    if (k < n) {
        uint64_t w = t_mix(seed + k / 8);
        for (size_t j = 0; k + j < n; j++)
            if (((w >> (8 * j)) & 0xff) != c[k + j]) return k + j;
    }
    return (size_t)-1;
}

/* Does /proc/self/maps list a mapping whose path contains `name`? */
static int t_maps_contains(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, name)) { found = 1; break; }
    fclose(f);
    return found;
}

/* Is symbol `sym` (as the dynamic linker resolves it for this process)
 * defined in a file whose path contains `lib`?  Prints why not. */
static int t_symbol_from(const char *sym, const char *lib, int quiet) {
    void *addr = dlsym(RTLD_DEFAULT, sym);
    if (!addr) {
        if (!quiet) fprintf(stderr, "  symbol %s: not found at all\n", sym);
        return 0;
    }
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fname) {
        if (!quiet) fprintf(stderr, "  symbol %s: dladdr failed\n", sym);
        return 0;
    }
    if (!strstr(info.dli_fname, lib)) {
        if (!quiet)
            fprintf(stderr, "  symbol %s resolves to %s, not to %s\n", sym,
                    info.dli_fname, lib);
        return 0;
    }
    return 1;
}

/* The library under test must really be loaded and must really provide
 * malloc/free: a test that passes without it proves nothing. */
__attribute__((unused)) static void t_check_loaded(const char *lib) {
    if (!lib || !*lib) return;
    CHECK(t_maps_contains(lib), "%s is not mapped in /proc/self/maps (LD_PRELOAD not applied?)", lib);
    static const char *core[] = {"malloc", "free", "calloc", "realloc"};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
        CHECK(t_symbol_from(core[i], lib, 0), "%s does not come from %s", core[i], lib);
}

/* Wall-clock guard: a deadlock must become a failure, not a hang. */
#include <signal.h>
static const char *t_alarm_what = "test";
static void t_on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL timeout: deadlock or livelock suspected in ";
    ssize_t r = write(2, msg, sizeof msg - 1);
    r = write(2, t_alarm_what, strlen(t_alarm_what));
    r = write(2, "\n", 1);
    (void)r;
    _exit(124);
}
__attribute__((unused)) static void t_arm_alarm(const char *what, unsigned seconds) {
    t_alarm_what = what;
    signal(SIGALRM, t_on_alarm);
    alarm(seconds);
}

/* KiB per page. */
static inline long page_kib(void) { return sysconf(_SC_PAGESIZE) / 1024; }

/* Resident KiB now (statm); 0 when it cannot be read. */
static inline long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * page_kib();
}


#endif
