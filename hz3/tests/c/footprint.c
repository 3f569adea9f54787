/* Per-thread footprint (issue 16), under LD_PRELOAD of any allocator.
 *
 *   threads N   N threads that only wait are started, then N more that each
 *               malloc and free one 16-byte block before waiting: the second
 *               batch may grow RSS by at most MAX_KIB_PER_THREAD more per
 *               thread than the first (the same stacks; what differs is the
 *               allocator's per-thread state). A thread cache that wrote its
 *               whole remote bank [owner][class] at creation (about 18 KiB in
 *               the fast lane) fails it.
 *
 * Prints "base_kib=.. idle_kib_per_thread=.. malloc_kib_per_thread=..".
 */
#include "common.h"

#include <pthread.h>

#define MAX_KIB_PER_THREAD 10
#define MAX_THREADS 256

/* One pair of barriers per batch: the first batch waits on its own while the
 * second one starts. */
struct batch {
    pthread_barrier_t started, release;
    pthread_t t[MAX_THREADS];
};

static void *idle_thread(void *arg)
{
    struct batch *b = arg;
    pthread_barrier_wait(&b->started);
    pthread_barrier_wait(&b->release);
    return NULL;
}

static void *malloc_thread(void *arg)
{
    struct batch *b = arg;
    char *volatile p = malloc(16);
    CHECK(p != NULL, "malloc(16) is NULL");
    memset(p, 1, 16);
    free(p);
    pthread_barrier_wait(&b->started);
    pthread_barrier_wait(&b->release);
    return NULL;
}

/* Starts n threads running `fn`, returns the RSS growth once all are waiting
 * (the threads stay until `join_all`). */
static long start_batch(struct batch *b, int n, void *(*fn)(void *))
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 << 10);
    pthread_barrier_init(&b->started, NULL, n + 1);
    pthread_barrier_init(&b->release, NULL, n + 1);
    long before = rss_kib();
    for (int i = 0; i < n; i++)
        CHECK(pthread_create(&b->t[i], &a, fn, b) == 0, "pthread_create failed");
    pthread_barrier_wait(&b->started);
    long grew = rss_kib() - before;
    pthread_attr_destroy(&a);
    return grew;
}

static void join_all(struct batch *b, int n)
{
    pthread_barrier_wait(&b->release);
    for (int i = 0; i < n; i++)
        pthread_join(b->t[i], NULL);
    pthread_barrier_destroy(&b->started);
    pthread_barrier_destroy(&b->release);
}

static int mode_threads(int n)
{
    static struct batch a, b;
    CHECK(n > 0 && n <= MAX_THREADS, "thread count %d out of 1..%d", n, MAX_THREADS);
    /* The allocator initialised and the main thread's cache made. */
    void *volatile warm = malloc(16);
    free(warm);
    long base = rss_kib();
    long idle = start_batch(&a, n, idle_thread);
    long mall = start_batch(&b, n, malloc_thread);
    join_all(&b, n);
    join_all(&a, n);
    double per_idle = (double)idle / n, per_malloc = (double)mall / n;
    printf("base_kib=%ld idle_kib_per_thread=%.1f malloc_kib_per_thread=%.1f\n", base, per_idle,
           per_malloc);
    CHECK(per_malloc - per_idle <= MAX_KIB_PER_THREAD,
          "a thread that made one malloc costs %.1f KiB more than one that made none (allowed %d)",
          per_malloc - per_idle, MAX_KIB_PER_THREAD);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(mode, "threads"))
        mode_threads(argc > 2 ? atoi(argv[2]) : 128);
    else {
        fprintf(stderr, "usage: %s threads [N]\n", argv[0]);
        return 2;
    }
    if (T_FAIL_GET() != 0)
        return 1;
    printf("all checks passed\n");
    return 0;
}
