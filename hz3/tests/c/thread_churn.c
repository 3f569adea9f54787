/* thread_churn.c - many short-lived threads: RSS must stay bounded.
 *
 * Creates and joins --threads N threads (default 20000; --long = 100000),
 * --batch of them alive at once.  Each thread allocates a bunch of blocks
 * (small, medium, one large), frees most, and leaves a few in a global
 * bounded ring; whatever it displaces from the ring (memory allocated by a
 * thread that has exited) it checks and frees.  Prints VmRSS/VmHWM; fails
 * if VmHWM exceeds --max-hwm-mb or if RSS keeps growing between the first
 * and the last part of the run by more than --max-growth-mb (a per-thread
 * leak of even a few KiB shows up there).
 *
 * Build: cc -O1 -fno-builtin -pthread -I. thread_churn.c -o thread_churn -ldl
 * Flags: --threads N  --long  --batch N (8)  --max-hwm-mb N (200)
 *        --max-growth-mb N (48)  --expect-lib NAME
 */
#define _GNU_SOURCE
#include "common.h"

#include <malloc.h>
#include <pthread.h>

static long opt_threads = 20000;
static int opt_batch = 8;
static long opt_max_hwm_mb = 200;
static long opt_max_growth_mb = 48;
static const char *opt_lib;

enum { RING = 4096, KEEP = 4 };
typedef struct {
    void *p;
    size_t n;
    uint64_t tag;
} ent_t;
static ent_t ring[RING];
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong ring_pos;

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = atol(line + kl + 1);
            break;
        }
    fclose(f);
    return v;
}

static void *thread_fn(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    t_rng r = {id * 0x9E3779B97F4A7C15ull + 17};
    enum { N = 48 };
    void *p[N];
    size_t n[N];
    for (int i = 0; i < N; i++) {
        if (i == N - 1) n[i] = 300 * 1024; /* one large block */
        else if (i % 8 == 7) n[i] = 4096 + t_below(&r, 60000);
        else n[i] = 8 + t_below(&r, 1024);
        p[i] = malloc(n[i]);
        CHECK(p[i] != NULL, "malloc(%zu) NULL in thread %llu", n[i], (unsigned long long)id);
        if (p[i]) t_fill(p[i], n[i], id + (uint64_t)i);
    }
    /* keep a few alive in the ring, free the rest */
    for (int i = 0; i < N; i++) {
        if (!p[i]) continue;
        CHECK(t_verify(p[i], n[i], id + (uint64_t)i) == (size_t)-1, "block corrupted in its own thread");
        if (i < KEEP) {
            ent_t e = {p[i], n[i], id + (uint64_t)i}, old;
            size_t k = atomic_fetch_add(&ring_pos, 1) % RING;
            pthread_mutex_lock(&ring_mu);
            old = ring[k];
            ring[k] = e;
            pthread_mutex_unlock(&ring_mu);
            if (old.p) {
                CHECK(t_verify(old.p, old.n, old.tag) == (size_t)-1,
                      "block left by an exited thread was corrupted");
                free(old.p);
            }
        } else {
            free(p[i]);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc) opt_threads = atol(argv[++i]);
        else if (!strcmp(a, "--long")) opt_threads = 100000;
        else if (!strcmp(a, "--batch") && i + 1 < argc) opt_batch = atoi(argv[++i]);
        else if (!strcmp(a, "--max-hwm-mb") && i + 1 < argc) opt_max_hwm_mb = atol(argv[++i]);
        else if (!strcmp(a, "--max-growth-mb") && i + 1 < argc) opt_max_growth_mb = atol(argv[++i]);
        else if (!strcmp(a, "--expect-lib") && i + 1 < argc) opt_lib = argv[++i];
        else {
            fprintf(stderr, "thread_churn: unknown argument %s\n", a);
            return 2;
        }
    }
    if (opt_batch < 1 || opt_batch > 1024) return 2;
    t_arm_alarm("thread_churn", opt_threads > 50000 ? 600 : 240);
    t_check_loaded(opt_lib);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t th[1024];
    long created = 0;
    long rss_warm = -1;
    long warm_at = opt_threads / 5;
    while (created < opt_threads) {
        int b = 0;
        for (; b < opt_batch && created < opt_threads; b++, created++) {
            int rc = pthread_create(&th[b], &attr, thread_fn, (void *)(uintptr_t)created);
            if (rc) {
                fprintf(stderr, "FAIL pthread_create #%ld: %s\n", created, strerror(rc));
                return 1;
            }
        }
        for (int j = 0; j < b; j++) pthread_join(th[j], NULL);
        if (rss_warm < 0 && created >= warm_at) rss_warm = status_kb("VmRSS");
    }
    long rss_end = status_kb("VmRSS");
    long hwm = status_kb("VmHWM");

    for (int k = 0; k < RING; k++) {
        if (ring[k].p)
            CHECK(t_verify(ring[k].p, ring[k].n, ring[k].tag) == (size_t)-1, "ring block corrupted at end");
        free(ring[k].p);
    }
    int trimmed = malloc_trim(0);
    long rss_freed = status_kb("VmRSS");
    t_check_loaded(opt_lib);

    printf("thread_churn: threads=%ld batch=%d VmRSS(after %ld threads)=%ld kB VmRSS(end)=%ld kB "
           "VmHWM=%ld kB VmRSS(after free+trim)=%ld kB trim=%d\n",
           opt_threads, opt_batch, warm_at, rss_warm, rss_end, hwm, rss_freed, trimmed);
    CHECK(hwm >= 0 && hwm <= opt_max_hwm_mb * 1024, "peak RSS %ld kB exceeds the bound of %ld MB", hwm,
          opt_max_hwm_mb);
    CHECK(rss_end - rss_warm <= opt_max_growth_mb * 1024,
          "RSS grew by %ld kB between thread %ld and thread %ld (bound %ld MB): memory of exited threads leaks",
          rss_end - rss_warm, warm_at, opt_threads, opt_max_growth_mb);
    long f = T_FAIL_GET();
    if (f) {
        fprintf(stderr, "thread_churn: %ld check(s) FAILED\n", f);
        return 1;
    }
    printf("thread_churn: all checks passed\n");
    return 0;
}
