/* Idle memory given back (issue 16), one process per mode, under LD_PRELOAD of
 * any allocator (the tests run hz3; the measurement modes run the peers too).
 *
 * Test modes (exit status 0 and "all checks passed" when the check holds):
 *   decay DECAY_MS   a thread allocates a 100 MiB burst of 1 KiB blocks, frees
 *                    them and stays alive but idle; main then runs light
 *                    malloc/free traffic (rounds of a few hundred blocks of one
 *                    size, then a short sleep) for up to max(5 s, 4 x DECAY_MS).
 *                    RSS must fall back within 2 x DECAY_MS (+ 25 % + 250 ms slack for a
 *                    loaded machine) of the burst's free.
 *   quiet DECAY_MS   like decay, but main's traffic is one malloc/free pair
 *                    per millisecond (4 KiB or 16..1024 bytes), which a warm
 *                    thread cache serves from its bins: no slow path runs, so
 *                    only a beat on the fast path gives the burst back.
 *   largedecay DECAY_MS [N]  N (128) large blocks of 1 MiB, written and freed (the lane's
 *                    large cache keeps them), then one malloc/free pair per
 *                    millisecond: 80 % of them must be unmapped within the
 *                    decay limit (every cached mapping due, not a few per pass).
 *   departed         a thread allocates 100,000 1 KiB blocks and exits; main
 *                    frees them. mallinfo2's in-use bytes (uordblks) must come
 *                    back without malloc_trim (hz3 only: uses mallinfo2).
 *   carve            one block of every size class from 4 KiB to 256 KiB,
 *                    never touched: RSS may grow by little more than one page
 *                    per block handed out (a refill that writes a link into
 *                    every carved object touches a page per object).
 *   idle DECAY_MS    like decay, but main sleeps instead of allocating: only a
 *                    background purge can give the burst back.
 *   exited DECAY_MS  four threads each allocate and free 16 MiB of 1 KiB
 *                    blocks, then exit; main sleeps 3 x DECAY_MS: the span
 *                    bytes (mallinfo2 arena) must be back under 2 MiB (hz3
 *                    only): nothing the exited threads' owners kept for them
 *                    (transfer lists, kept empty spans) outlives them.
 *   gone             four threads each allocate, write and free 16 MiB of
 *                    1 KiB blocks (half of them freed by the next thread,
 *                    which exits later), then exit; right after the joins
 *                    (no time for any decay), RSS must be back within 20 % of
 *                    the 64 MiB: nothing is left for threads that are gone.
 *   regen            three generations of two threads, each allocating,
 *                    writing and freeing 16 MiB of 1 KiB blocks, each
 *                    generation started as the previous one exited: the third
 *                    generation may fault in at most a quarter of its pages
 *                    (threads replaced at once find their pages resident).
 *   trimmeta         main allocates 256 MiB of 1 KiB blocks (128 segments),
 *                    writes one byte of each, frees them all and calls
 *                    malloc_trim(0): RSS must be back within 1 MiB of what it
 *                    was before (hz3 only: the segments' metadata, 5 MiB per
 *                    GiB, goes back with their pages).
 *   keptidle DECAY_MS  main keeps a thread cache while four threads (all on
 *                    its owner: run with HZ3_OWNERS=1) allocate, write and
 *                    free 64 blocks of each size from 16 B to 16 KiB and
 *                    exit; main sleeps 3 x DECAY_MS: the span bytes (mallinfo2
 *                    arena) must be under 256 KiB (hz3 only): the classes
 *                    nobody refills from give back the empty spans their
 *                    central caches keep, although a thread still lives.
 *   idlepurge DECAY_MS  four threads each allocate, write and free 16 MiB
 *                    of 1 KiB blocks and exit; 0.9 x DECAY_MS after the
 *                    joins (before decay could purge what they freed: it
 *                    waits a whole DECAY_MS) RSS must be back within 20 % of
 *                    the 64 MiB (run with the purge thread on: it collects
 *                    and purges owners idle for two of its passes; and
 *                    with HZ3_OWNERS=8, so no worker shares main's owner).
 *   stashidle DECAY_MS  a thread allocates 16 MiB of 1 KiB blocks and
 *                    stays alive, idle; main frees them (remote frees,
 *                    stashed in the thread's owner's inbox where the lane
 *                    keeps one) and sleeps 3 x DECAY_MS: the span bytes must
 *                    be under 2 MiB (hz3 only): an idle class's inbox is
 *                    drained into its spans although its owner lives.
 *   forkdrain        a thread allocates 50,000 1 KiB blocks and stays alive;
 *                    main frees them (remote frees, stashed for the thread's
 *                    owner in lanes that keep a stash) and forks: in the
 *                    child, where the thread is gone, mallinfo2's in-use bytes
 *                    must not count them (hz3 only).
 *
 * Measurement modes (print "peak_kib=... settled_kib=..."; no checks):
 *   threads1200      1,200 threads alive at once, each holding 64 blocks of
 *                    1..40,000 bytes, written.
 *   churn            20,000 threads created and joined 8 at a time, each
 *                    allocating and freeing 64 blocks of 16..4096 bytes.
 *   large2           2 threads, each 2,000 rounds of: malloc a 5-25 MiB block,
 *                    write every page, keep up to 8, free the oldest.
 */
#include "common.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

/* Peak resident KiB (VmHWM). */
static long peak_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ decay */

#define BURST_BYTES (100L << 20)
#define BURST_BLOCK 1024
#define BURST_N (BURST_BYTES / BURST_BLOCK)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int burst_freed, may_exit;

static void *burst_thread(void *arg)
{
    (void)arg;
    char **v = malloc(BURST_N * sizeof *v);
    CHECK(v != NULL, "v is NULL");
    for (long i = 0; i < BURST_N; i++) {
        v[i] = malloc(BURST_BLOCK);
        CHECK(v[i] != NULL, "v[i] is NULL");
        memset(v[i], (int)i, BURST_BLOCK);
    }
    for (long i = 0; i < BURST_N; i++)
        free(v[i]);
    free(v);
    pthread_mutex_lock(&mu);
    burst_freed = 1;
    pthread_cond_broadcast(&cv);
    while (!may_exit)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* One round of light traffic: n blocks of one size, written, then freed. */
static void light_round(unsigned *seed)
{
    static void *held[512];
    *seed = *seed * 1103515245u + 12345u;
    size_t size = 16 + ((*seed >> 8) % 64) * 16;
    int n = 64 + (int)((*seed >> 16) % 400);
    for (int i = 0; i < n; i++) {
        held[i] = malloc(size);
        CHECK(held[i] != NULL, "held[i] is NULL");
        ((volatile char *)held[i])[0] = 1;
    }
    for (int i = 0; i < n; i++)
        free(held[i]);
}

/* One malloc/free pair (the traffic of bench-matrix's settle phase): 4 KiB
 * every fourth call, else 16..1024 bytes; a thread cache serves it from its
 * bins, with no refill or flush once they are warm. */
static void pair_round(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    size_t size = (*seed >> 8) % 4 == 0 ? 4096 : 16 + ((*seed >> 16) % 64) * 16;
    char *p = malloc(size);
    CHECK(p != NULL, "p is NULL");
    ((volatile char *)p)[0] = 1;
    free(p);
}

/* traffic: 0 none (main sleeps), 1 light rounds, 2 one pair per millisecond. */
/* How long idle memory may take to go back: within 2 x the decay (the epochs
 * of half of it), plus half a period and scheduling slack on a loaded machine. */
static long decay_limit_ms(long decay_ms)
{
    return decay_ms * 2 + decay_ms / 2 + 250;
}

static int mode_decay(long decay_ms, int traffic)
{
    long base = rss_kib();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, burst_thread, NULL) == 0, "pthread_create failed");
    pthread_mutex_lock(&mu);
    while (!burst_freed)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    double t0 = now_ms();
    long freed_rss = rss_kib();
    long limit_ms = decay_limit_ms(decay_ms);
    long run_ms = decay_ms * 4 > 5000 ? decay_ms * 4 : 5000;
    long target = base + (BURST_BYTES >> 10) / 5; /* 80 % of the burst back */
    double back_at = -1;
    unsigned seed = 42;
    long rounds = 0;
    while (now_ms() - t0 < run_ms) {
        if (traffic == 1)
            light_round(&seed);
        else if (traffic == 2)
            pair_round(&seed);
        rounds++;
        sleep_ms(traffic == 2 ? 1 : traffic ? 2 : 20);
        if (back_at < 0 && rss_kib() <= target)
            back_at = now_ms() - t0;
        if (back_at >= 0 && now_ms() - t0 > limit_ms)
            break;
    }
    printf("base_kib=%ld after_free_kib=%ld target_kib=%ld end_kib=%ld rounds=%ld "
           "back_after_ms=%.0f limit_ms=%ld\n",
           base, freed_rss, target, rss_kib(), rounds, back_at, limit_ms);
    CHECK(freed_rss > target, "the burst was not resident after its free (rss %ld kib)",
              freed_rss);
    CHECK(back_at >= 0, "the burst stayed resident for %ld ms", run_ms);
    CHECK(back_at <= limit_ms, "the burst went back after %.0f ms (limit %ld)", back_at,
              limit_ms);
    pthread_mutex_lock(&mu);
    may_exit = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    return 0;
}

/* ------------------------------------------------------------- largedecay */

#define LARGE_MAX 128
#define LARGE_BLOCK (1L << 20)

static int mode_largedecay(long decay_ms, int n)
{
    static char *blocks[LARGE_MAX];
    CHECK(n > 0 && n <= LARGE_MAX, "largedecay: %d blocks (1..%d)", n, LARGE_MAX);
    long base = rss_kib();
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(LARGE_BLOCK);
        CHECK(blocks[i] != NULL, "large block %d is NULL", i);
        memset(blocks[i], 1, LARGE_BLOCK);
    }
    for (int i = 0; i < n; i++)
        free(blocks[i]);
    double t0 = now_ms();
    long freed_rss = rss_kib();
    long limit_ms = decay_limit_ms(decay_ms);
    long run_ms = decay_ms * 8 > 5000 ? decay_ms * 8 : 5000;
    long target = base + (n * LARGE_BLOCK >> 10) / 5; /* 80 % back */
    double back_at = -1;
    unsigned seed = 42;
    while (now_ms() - t0 < run_ms) {
        pair_round(&seed);
        sleep_ms(1);
        if (back_at < 0 && rss_kib() <= target)
            back_at = now_ms() - t0;
        if (back_at >= 0)
            break;
    }
    printf("base_kib=%ld after_free_kib=%ld target_kib=%ld end_kib=%ld back_after_ms=%.0f "
           "limit_ms=%ld\n",
           base, freed_rss, target, rss_kib(), back_at, limit_ms);
    CHECK(freed_rss > target, "the large blocks were not resident after their free (rss %ld kib)",
          freed_rss);
    CHECK(back_at >= 0, "the cached large blocks stayed resident for %ld ms", run_ms);
    CHECK(back_at <= limit_ms, "the cached large blocks went back after %.0f ms (limit %ld)",
          back_at, limit_ms);
    return 0;
}

/* --------------------------------------------------------------- departed */

#define DEPARTED_N 100000

static void *departed_thread(void *arg)
{
    char **v = arg;
    for (long i = 0; i < DEPARTED_N; i++) {
        v[i] = malloc(BURST_BLOCK);
        CHECK(v[i] != NULL, "v[i] is NULL");
        memset(v[i], 1, BURST_BLOCK);
    }
    return NULL;
}

static int mode_departed(void)
{
    char **v = malloc(DEPARTED_N * sizeof *v);
    CHECK(v != NULL, "v is NULL");
    struct mallinfo2 before = mallinfo2();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, departed_thread, v) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    struct mallinfo2 held = mallinfo2();
    for (long i = 0; i < DEPARTED_N; i++)
        free(v[i]);
    /* A little traffic of main's own, as a program going on would do. */
    unsigned seed = 7;
    for (int i = 0; i < 200; i++)
        light_round(&seed);
    struct mallinfo2 after = mallinfo2();
    printf("uordblks before=%zu held=%zu after=%zu; arena before=%zu held=%zu after=%zu\n",
           before.uordblks, held.uordblks, after.uordblks, before.arena, held.arena,
           after.arena);
    size_t burst = (size_t)DEPARTED_N * BURST_BLOCK;
    CHECK(held.uordblks >= before.uordblks + burst, "the blocks were not counted in use");
    CHECK(after.uordblks <= before.uordblks + burst / 20,
              "%zu bytes still in use after every block was freed",
              after.uordblks - before.uordblks);
    CHECK(after.arena <= before.arena + burst / 10, "%zu span bytes kept",
              after.arena - before.arena);
    free(v);
    return 0;
}

/* ----------------------------------------------------------------- exited */

static void *exited_thread(void *arg)
{
    (void)arg;
    enum { N = 16 << 10 };
    char **v = malloc(N * sizeof *v);
    CHECK(v != NULL, "v is NULL");
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            v[i] = malloc(BURST_BLOCK);
            CHECK(v[i] != NULL, "v[i] is NULL");
            v[i][0] = 1;
        }
        for (int i = 0; i < N; i++)
            free(v[i]);
    }
    free(v);
    return NULL;
}

static int mode_exited(long decay_ms)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, exited_thread, NULL) == 0, "pthread_create failed");
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    struct mallinfo2 at_exit = mallinfo2();
    sleep_ms(decay_ms * 3);
    struct mallinfo2 later = mallinfo2();
    printf("arena at_exit=%zu later=%zu rss_kib=%ld\n", at_exit.arena, later.arena, rss_kib());
    CHECK(later.arena <= (2u << 20), "%zu span bytes kept for exited threads", later.arena);
    return 0;
}

/* ------------------------------------------------------- trimmeta, keptidle */

#define META_N ((256 << 20) / BURST_BLOCK)

static int mode_trimmeta(void)
{
    /* The pointer array outside malloc (a freed large block may stay cached). */
    char **v = mmap(NULL, META_N * sizeof *v, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(v != MAP_FAILED, "mmap failed");
    memset(v, 0, META_N * sizeof *v);
    free(malloc(BURST_BLOCK));
    malloc_trim(0);
    long base = rss_kib();
    for (long i = 0; i < META_N; i++) {
        v[i] = malloc(BURST_BLOCK);
        CHECK(v[i] != NULL, "v[i] is NULL");
        v[i][0] = 1;
    }
    for (long i = 0; i < META_N; i++)
        free(v[i]);
    malloc_trim(0);
    long after = rss_kib();
    printf("base_kib=%ld after_trim_kib=%ld\n", base, after);
    CHECK(after <= base + 1024, "%ld kib stayed resident after malloc_trim", after - base);
    munmap(v, META_N * sizeof *v);
    return 0;
}

static void *keptidle_thread(void *arg)
{
    (void)arg;
    enum { N = 64 };
    void *v[N];
    for (size_t size = 16; size <= 16384; size += size / 8 > 16 ? size / 8 : 16) {
        for (int i = 0; i < N; i++) {
            v[i] = malloc(size);
            CHECK(v[i] != NULL, "v[i] is NULL");
            memset(v[i], 1, size);
        }
        for (int i = 0; i < N; i++)
            free(v[i]);
    }
    return NULL;
}

static int mode_keptidle(long decay_ms)
{
    free(malloc(16));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, keptidle_thread, NULL) == 0, "pthread_create failed");
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    struct mallinfo2 at_exit = mallinfo2();
    sleep_ms(decay_ms * 3);
    struct mallinfo2 later = mallinfo2();
    printf("arena at_exit=%zu later=%zu rss_kib=%ld\n", at_exit.arena, later.arena, rss_kib());
    CHECK(later.arena <= (256u << 10), "%zu span bytes kept by idle classes", later.arena);
    return 0;
}

static void *idlepurge_thread(void *arg)
{
    (void)arg;
    enum { N = (16 << 20) / BURST_BLOCK };
    char **v = malloc(N * sizeof *v);
    CHECK(v != NULL, "v is NULL");
    for (int i = 0; i < N; i++) {
        v[i] = malloc(BURST_BLOCK);
        CHECK(v[i] != NULL, "v[i] is NULL");
        memset(v[i], 1, BURST_BLOCK);
    }
    for (int i = 0; i < N; i++)
        free(v[i]);
    free(v);
    return NULL;
}

static int mode_idlepurge(long decay_ms)
{
    free(malloc(16));
    long base = rss_kib();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, idlepurge_thread, NULL) == 0, "pthread_create failed");
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    long at_exit = rss_kib();
    sleep_ms(decay_ms * 9 / 10);
    long later = rss_kib();
    long burst_kib = 4L * (16 << 10);
    printf("base_kib=%ld at_exit_kib=%ld later_kib=%ld\n", base, at_exit, later);
    CHECK(later <= base + burst_kib / 5, "%ld kib of idle owners stayed resident", later - base);
    return 0;
}

#define STASH_N ((16 << 20) / BURST_BLOCK)
static char **stash_v;
static pthread_barrier_t stash_bar;

static void *stashidle_thread(void *arg)
{
    (void)arg;
    for (long i = 0; i < STASH_N; i++) {
        stash_v[i] = malloc(BURST_BLOCK);
        CHECK(stash_v[i] != NULL, "v[i] is NULL");
        stash_v[i][0] = 1;
    }
    pthread_barrier_wait(&stash_bar);
    /* Alive and idle while main frees and sleeps. */
    pthread_barrier_wait(&stash_bar);
    return NULL;
}

static int mode_stashidle(long decay_ms)
{
    stash_v = mmap(NULL, STASH_N * sizeof *stash_v, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(stash_v != MAP_FAILED, "mmap failed");
    free(malloc(16));
    pthread_barrier_init(&stash_bar, NULL, 2);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, stashidle_thread, NULL) == 0, "pthread_create failed");
    pthread_barrier_wait(&stash_bar);
    for (long i = 0; i < STASH_N; i++)
        free(stash_v[i]);
    struct mallinfo2 at_free = mallinfo2();
    sleep_ms(decay_ms * 3);
    struct mallinfo2 later = mallinfo2();
    printf("arena at_free=%zu later=%zu rss_kib=%ld\n", at_free.arena, later.arena, rss_kib());
    CHECK(later.arena <= (2u << 20), "%zu span bytes kept in a live owner's inboxes", later.arena);
    pthread_barrier_wait(&stash_bar);
    pthread_join(t, NULL);
    return 0;
}

/* ------------------------------------------------------------- gone, regen */

#define GONE_T 4
#define GONE_N ((16 << 20) / BURST_BLOCK)

static char **gone_v[GONE_T];
static pthread_barrier_t gone_bar;

/* Allocates and writes its 16 MiB, frees the first half of its own and, after
 * the barrier, the second half of the previous thread's (a remote free to an
 * owner whose thread may be gone by then: thread 0 exits first). */
static void *gone_thread(void *arg)
{
    long id = (long)arg;
    char **v = gone_v[id];
    for (long i = 0; i < GONE_N; i++) {
        v[i] = malloc(BURST_BLOCK);
        CHECK(v[i] != NULL, "v[i] is NULL");
        memset(v[i], 1, BURST_BLOCK);
    }
    for (long i = 0; i < GONE_N / 2; i++)
        free(v[i]);
    pthread_barrier_wait(&gone_bar);
    if (id > 0) {
        char **w = gone_v[id - 1];
        for (long i = GONE_N / 2; i < GONE_N; i++)
            free(w[i]);
    }
    return NULL;
}

static int mode_gone(void)
{
    for (int i = 0; i < GONE_T; i++) {
        gone_v[i] = calloc(GONE_N, sizeof(char *));
        CHECK(gone_v[i] != NULL, "calloc failed");
    }
    long base = rss_kib();
    pthread_barrier_init(&gone_bar, NULL, GONE_T);
    pthread_t t[GONE_T];
    for (long i = 0; i < GONE_T; i++)
        CHECK(pthread_create(&t[i], NULL, gone_thread, (void *)i) == 0, "pthread_create failed");
    for (int i = 0; i < GONE_T; i++)
        pthread_join(t[i], NULL);
    /* The last thread's second half: freed by main. */
    for (long i = GONE_N / 2; i < GONE_N; i++)
        free(gone_v[GONE_T - 1][i]);
    long after = rss_kib();
    long burst_kib = (long)GONE_T * (GONE_N * BURST_BLOCK >> 10);
    long peak = peak_kib();
    printf("base_kib=%ld peak_kib=%ld after_kib=%ld burst_kib=%ld\n", base, peak, after,
           burst_kib);
    CHECK(peak >= base + burst_kib / 2, "the burst was never resident (peak %ld kib)", peak);
    CHECK(after <= base + burst_kib / 5, "%ld kib of the exited threads' memory stayed resident",
          after - base);
    return 0;
}

#define REGEN_N ((16 << 20) / BURST_BLOCK)

static void *regen_thread(void *arg)
{
    (void)arg;
    char **v = malloc(REGEN_N * sizeof *v);
    CHECK(v != NULL, "v is NULL");
    for (long i = 0; i < REGEN_N; i++) {
        v[i] = malloc(BURST_BLOCK);
        CHECK(v[i] != NULL, "v[i] is NULL");
        memset(v[i], 1, BURST_BLOCK);
    }
    for (long i = 0; i < REGEN_N; i++)
        free(v[i]);
    free(v);
    return NULL;
}

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static int mode_regen(void)
{
    long faults[3];
    for (int g = 0; g < 3; g++) {
        long f0 = minflt();
        pthread_t t[2];
        for (long i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, regen_thread, (void *)i) == 0,
                  "pthread_create failed");
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        faults[g] = minflt() - f0;
    }
    long pages = 2L * REGEN_N * BURST_BLOCK / sysconf(_SC_PAGESIZE);
    printf("faults per generation: %ld %ld %ld (pages written per generation %ld)\n", faults[0],
           faults[1], faults[2], pages);
    CHECK(faults[2] <= pages / 4, "the third generation faulted in %ld of %ld pages", faults[2],
          pages);
    return 0;
}

/* --------------------------------------------------------------- forkdrain */

#define FORK_N 50000

static char **fork_v;
static int fork_allocated, fork_done;

/* Allocates the blocks and stays alive without allocating again until told:
 * its owner's remote stash (lanes that keep one) holds main's frees. */
static void *fork_thread(void *arg)
{
    (void)arg;
    for (long i = 0; i < FORK_N; i++) {
        fork_v[i] = malloc(BURST_BLOCK);
        CHECK(fork_v[i] != NULL, "v[i] is NULL");
        fork_v[i][0] = 1;
    }
    pthread_mutex_lock(&mu);
    fork_allocated = 1;
    pthread_cond_broadcast(&cv);
    while (!fork_done)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int mode_forkdrain(void)
{
    fork_v = malloc(FORK_N * sizeof *fork_v);
    CHECK(fork_v != NULL, "v is NULL");
    struct mallinfo2 before = mallinfo2();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fork_thread, NULL) == 0, "pthread_create failed");
    pthread_mutex_lock(&mu);
    while (!fork_allocated)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (long i = 0; i < FORK_N; i++)
        free(fork_v[i]);
    /* Main's own traffic: its outbox sends what it still holds. */
    unsigned seed = 7;
    for (int i = 0; i < 200; i++)
        light_round(&seed);
    size_t burst = (size_t)FORK_N * BURST_BLOCK;
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        /* The child: the thread is gone; its owner's stash must not stay in use. */
        for (int i = 0; i < 20; i++)
            light_round(&seed);
        struct mallinfo2 after = mallinfo2();
        printf("child: uordblks before=%zu after=%zu\n", before.uordblks, after.uordblks);
        _exit(after.uordblks <= before.uordblks + burst / 10 ? 0 : 3);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid failed");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "the child kept the exited thread's stash in use (status %d)", st);
    pthread_mutex_lock(&mu);
    fork_done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    return 0;
}

/* ------------------------------------------------------------------ carve */

static int mode_carve(void)
{
    /* Sizes from 4 KiB to 256 KiB, 8 per doubling (hz3's medium classes). */
    static void *held[64];
    int n = 0;
    long before = rss_kib();
    for (int k = 0; k < 48; k++) {
        double s = 4096.0;
        for (int j = 0; j < k; j++)
            s *= 1.0905077326652577; /* 2^(1/8) */
        size_t size = ((size_t)s + 15) & ~(size_t)15;
        held[n] = malloc(size);
        CHECK(held[n] != NULL, "held[n] is NULL");
        n++;
    }
    long grew = rss_kib() - before;
    long allowed = n * page_kib() + 512;
    printf("blocks=%d rss_grew_kib=%ld allowed_kib=%ld\n", n, grew, allowed);
    CHECK(grew <= allowed, "%d untouched blocks made RSS grow by %ld KiB (allowed %ld)", n,
              grew, allowed);
    for (int i = 0; i < n; i++)
        free(held[i]);
    return 0;
}

/* ----------------------------------------------------------- measurements */

#define T1200 1200
static pthread_barrier_t bar;

static void *t1200_thread(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    void *v[64];
    for (int i = 0; i < 64; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t size = 1 + (seed >> 4) % 40000;
        v[i] = malloc(size);
        memset(v[i], 1, size);
    }
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);
    for (int i = 0; i < 64; i++)
        free(v[i]);
    return NULL;
}

static void settle_report(void)
{
    long peak = peak_kib();
    sleep_ms(2500);
    printf("peak_kib=%ld settled_kib=%ld\n", peak, rss_kib());
}

static int mode_threads1200(void)
{
    static pthread_t t[T1200];
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 << 10);
    pthread_barrier_init(&bar, NULL, T1200 + 1);
    for (long i = 0; i < T1200; i++)
        CHECK(pthread_create(&t[i], &a, t1200_thread, (void *)i) == 0, "pthread_create failed");
    pthread_barrier_wait(&bar);
    printf("all_alive_kib=%ld\n", rss_kib());
    pthread_barrier_wait(&bar);
    for (int i = 0; i < T1200; i++)
        pthread_join(t[i], NULL);
    settle_report();
    return 0;
}

static void *churn_thread(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg + 1;
    void *v[64];
    for (int i = 0; i < 64; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t size = 16 + (seed >> 4) % 4080;
        v[i] = malloc(size);
        memset(v[i], 1, size);
    }
    for (int i = 0; i < 64; i++)
        free(v[i]);
    return NULL;
}

static int mode_churn(void)
{
    pthread_t t[8];
    for (long i = 0; i < 20000; i += 8) {
        for (int k = 0; k < 8; k++)
            CHECK(pthread_create(&t[k], NULL, churn_thread, (void *)(i + k)) == 0, "pthread_create failed");
        for (int k = 0; k < 8; k++)
            pthread_join(t[k], NULL);
    }
    settle_report();
    return 0;
}

static void *large_thread(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 3;
    char *keep[8] = {0};
    for (int r = 0; r < 2000; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t size = (5u << 20) + (seed >> 4) % (20u << 20);
        char *p = malloc(size);
        CHECK(p != NULL, "p is NULL");
        for (size_t o = 0; o < size; o += 4096)
            p[o] = 1;
        free(keep[r % 8]);
        keep[r % 8] = p;
    }
    for (int i = 0; i < 8; i++)
        free(keep[i]);
    return NULL;
}

static int mode_large2(void)
{
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, large_thread, (void *)i) == 0, "pthread_create failed");
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    settle_report();
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    long ms = argc > 2 ? atol(argv[2]) : 1000;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(mode, "decay"))
        mode_decay(ms, 1);
    else if (!strcmp(mode, "idle"))
        mode_decay(ms, 0);
    else if (!strcmp(mode, "quiet"))
        mode_decay(ms, 2);
    else if (!strcmp(mode, "exited"))
        mode_exited(ms);
    else if (!strcmp(mode, "trimmeta"))
        mode_trimmeta();
    else if (!strcmp(mode, "keptidle"))
        mode_keptidle(ms);
    else if (!strcmp(mode, "idlepurge"))
        mode_idlepurge(ms);
    else if (!strcmp(mode, "stashidle"))
        mode_stashidle(ms);
    else if (!strcmp(mode, "departed"))
        mode_departed();
    else if (!strcmp(mode, "largedecay"))
        mode_largedecay(ms, argc > 3 ? atoi(argv[3]) : LARGE_MAX);
    else if (!strcmp(mode, "forkdrain"))
        mode_forkdrain();
    else if (!strcmp(mode, "gone"))
        mode_gone();
    else if (!strcmp(mode, "regen"))
        mode_regen();
    else if (!strcmp(mode, "carve"))
        mode_carve();
    else if (!strcmp(mode, "threads1200"))
        mode_threads1200();
    else if (!strcmp(mode, "churn"))
        mode_churn();
    else if (!strcmp(mode, "large2"))
        mode_large2();
    else {
        fprintf(stderr, "usage: %s decay|idle|quiet|departed|trimmeta|keptidle|idlepurge|stashidle|gone|regen|forkdrain|carve|threads1200|churn|large2 [ms]\n",
                argv[0]);
        return 2;
    }
    if (T_FAIL_GET() != 0)
        return 1;
    printf("all checks passed\n");
    return 0;
}
