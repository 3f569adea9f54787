/* late_tls.c - libraries with dynamic TLS dlopened while the allocator runs.
 *
 * Build: cc -O1 -fno-builtin -pthread -I. late_tls.c -o late_tls -ldl
 * Run:   LD_PRELOAD=/path/libhz3_fast.so ./late_tls --expect-lib libhz3_fast.so mod1.so mod2.so ...
 *
 * Four threads allocate and free while the main thread dlopens the modules
 * (tls_module.c, copies under distinct names) one by one; after each dlopen
 * every thread touches the TLS of every module loaded so far and allocates
 * again before the next one is loaded. 20 or more modules outgrow the DTV that
 * glibc gave each thread at start (its surplus is 14 entries), so glibc's
 * __tls_get_addr updates and reallocates the DTV (with malloc) in threads that
 * are in the middle of allocating. An allocator that itself reaches its TLS
 * through __tls_get_addr re-enters there before the DTV is updated (glibc
 * warns about such mallocs); initial-exec and static TLS descriptors do not.
 * Then two new threads do the same. Prints "late_tls: all checks passed".
 */
#define _GNU_SOURCE
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_MODS 64
#define WORKERS 4

typedef long *(*touch_fn)(long);
static touch_fn touch[MAX_MODS];
static atomic_int loaded;   /* modules whose `touch` is set */
static atomic_int done_round[WORKERS + 2];
static atomic_int stop;
static int nmods;

/* Touches every loaded module's TLS and allocates around it; checks the
 * thread's TLS copies hold what this thread wrote. */
static void round_over(int n, long tag, t_rng *r) {
    void *keep[16];
    for (int i = 0; i < 16; i++) {
        size_t sz = 1 + t_below(r, 4096);
        keep[i] = malloc(sz);
        if (!keep[i]) CHECK(0, "malloc(%zu) failed", sz);
        else memset(keep[i], (int)i, sz);
    }
    for (int m = 0; m < n; m++) {
        long *t = touch[m](tag);
        if (t[63] != tag) CHECK(0, "module %d TLS: %ld, wrote %ld", m, t[63], tag);
        void *p = malloc(48 + (size_t)m);
        if (!p) CHECK(0, "malloc after touching module %d failed", m);
        free(p);
    }
    for (int i = 0; i < 16; i++) free(keep[i]);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    t_rng r = {(uint64_t)id * 7919 + 1};
    int seen = -1;
    for (;;) {
        int n = atomic_load(&loaded);
        int fin = atomic_load(&stop);
        round_over(n, id * 1000 + n, &r);
        if (n != seen) {
            seen = n;
            atomic_store(&done_round[id], n);
        }
        if (fin) break;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *lib = NULL;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--expect-lib") == 0) {
        lib = argv[a + 1];
        a += 2;
    }
    for (; a < argc && nmods < MAX_MODS; a++) nmods++;
    const char **mods = (const char **)&argv[argc - nmods];
    t_check_loaded(lib);

    pthread_t th[WORKERS + 2];
    for (int i = 0; i < WORKERS; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i)) CHECK(0, "pthread_create");
    t_rng r = {99};
    for (int m = 0; m < nmods; m++) {
        void *h = dlopen(mods[m], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            CHECK(0, "dlopen %s: %s", mods[m], dlerror());
            break;
        }
        touch[m] = (touch_fn)dlsym(h, "mod_touch");
        if (!touch[m]) {
            CHECK(0, "dlsym mod_touch in %s", mods[m]);
            break;
        }
        atomic_store(&loaded, m + 1);
        round_over(m + 1, 424242 + m, &r);
        /* Every worker has run a round that saw this module. */
        for (int i = 0; i < WORKERS; i++)
            while (atomic_load(&done_round[i]) < m + 1) sched_yield();
    }
    int n = atomic_load(&loaded);
    for (int i = WORKERS; i < WORKERS + 2; i++) {
        atomic_store(&done_round[i], -1);
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i)) CHECK(0, "pthread_create");
    }
    for (int i = WORKERS; i < WORKERS + 2; i++)
        while (atomic_load(&done_round[i]) < n) sched_yield();
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS + 2; i++) pthread_join(th[i], NULL);
    printf("late_tls: %d modules dlopened, DTV grown in %d threads\n", n, WORKERS + 3);
    if (T_FAIL_GET()) return 1;
    printf("late_tls: all checks passed\n");
    return 0;
}
