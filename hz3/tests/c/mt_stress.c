/* mt_stress.c - cross-thread allocation stress under LD_PRELOAD.
 *
 * Phase 1: N worker threads allocate random sizes (1 B .. 300 KiB), fill
 * each block with a pattern derived from its address and a unique tag, keep
 * some locally and hand about half of them to other threads through
 * mutex-protected queues; the receiver checks the pattern and frees the
 * block (a remote free).  Phase 2: thread churn - rounds of short-lived
 * threads that allocate, free some, and leave objects in a shared pool that
 * the next round's threads check and free (memory of dead threads freed by
 * others).  Any pattern mismatch is reported as corruption.
 *
 * Build: cc -O1 -fno-builtin -pthread -I. mt_stress.c -o mt_stress -ldl
 * Flags: --threads N (8)  --ops N per thread (60000)  --churn-rounds N (40)
 *        --churn-threads N (16)  --expect-lib NAME  --seed N  --max-size N
 *        --no-aligned (use malloc where aligned_alloc would be used)
 */
#define _GNU_SOURCE
#include "common.h"

#include <malloc.h>
#include <pthread.h>

static int opt_threads = 8;
static long opt_ops = 60000;
static int opt_churn_rounds = 40;
static int opt_churn_threads = 16;
static uint64_t opt_seed = 42;
static size_t opt_max_size = 300 * 1024;
static const char *opt_lib;
static int opt_no_aligned; /* only to validate the harness on peers with broken aligned_alloc */

typedef struct {
    void *p;
    size_t n;
    uint64_t tag;
} blk_t;

/* Pattern covers the whole block up to 4 KiB; above that, both 2 KiB ends
 * and one word every 512 bytes. */
static inline uint64_t pat_seed(const void *p, uint64_t tag) {
    return t_mix((uint64_t)(uintptr_t)p ^ (tag * 0x9e3779b97f4a7c15ull));
}
static void pat_write(void *p, size_t n, uint64_t tag) {
    uint64_t s = pat_seed(p, tag);
    if (n <= 4096) {
        t_fill(p, n, s);
        return;
    }
    unsigned char *c = p;
    t_fill(c, 2048, s);
    t_fill(c + n - 2048, 2048, s + 1000003);
    for (size_t off = 2048; off + 8 <= n - 2048; off += 512) {
        uint64_t w = t_mix(s + off);
        __builtin_memcpy(c + off, &w, 8);
    }
}
static int pat_check(const void *p, size_t n, uint64_t tag) {
    uint64_t s = pat_seed(p, tag);
    if (n <= 4096) return t_verify(p, n, s) == (size_t)-1;
    const unsigned char *c = p;
    if (t_verify(c, 2048, s) != (size_t)-1) return 0;
    if (t_verify(c + n - 2048, 2048, s + 1000003) != (size_t)-1) return 0;
    for (size_t off = 2048; off + 8 <= n - 2048; off += 512) {
        uint64_t w = t_mix(s + off), g;
        __builtin_memcpy(&g, c + off, 8);
        if (g != w) return 0;
    }
    return 1;
}

static size_t rand_size(t_rng *r) {
    uint64_t x = t_below(r, 100);
    size_t n;
    if (x < 70) n = 1 + t_below(r, 2048);
    else if (x < 92) n = 2049 + t_below(r, 62 * 1024);
    else n = 64 * 1024 + t_below(r, 236 * 1024 + 1);
    return n > opt_max_size ? 1 + n % opt_max_size : n;
}

static atomic_ulong tag_counter;
static void *alloc_block(t_rng *r, blk_t *b) {
    size_t n = rand_size(r);
    void *p;
    switch (t_below(r, 16)) {
    case 0: p = calloc(1, n); break;
    case 1: if (opt_no_aligned) { p = malloc(n); break; } {
        size_t a = (size_t)16 << t_below(r, 8); /* 16 .. 2048 */
        p = aligned_alloc(a, n);
        if (p && (uintptr_t)p % a) CHECK(0, "aligned_alloc(%zu,%zu)=%p misaligned", a, n, p);
        break;
    }
    case 2: p = realloc(malloc(1 + n / 3), n); break;
    default: p = malloc(n); break;
    }
    CHECK(p != NULL, "allocation of %zu bytes returned NULL", n);
    if (!p) return NULL;
    b->p = p;
    b->n = n;
    b->tag = atomic_fetch_add(&tag_counter, 1) + 1;
    pat_write(p, n, b->tag);
    return p;
}
static void release_block(blk_t *b, const char *where) {
    if (!b->p) return;
    CHECK(pat_check(b->p, b->n, b->tag), "CORRUPTION (%s): block %p size %zu tag %llu changed", where, b->p,
          b->n, (unsigned long long)b->tag);
    CHECK(malloc_usable_size(b->p) >= b->n, "usable size of %p shrank below %zu", b->p, b->n);
    free(b->p);
    b->p = NULL;
}

/* ------------------------------------------------------------------ */
/* mailbox queues: growable arrays under a mutex (growth uses realloc) */

typedef struct {
    pthread_mutex_t mu;
    blk_t *items;
    size_t len, cap;
    int closed; /* receiver finished: senders free the block themselves */
} queue_t;

static size_t queue_limit = 512;

static queue_t *queues;

/* Returns 0 (and leaves b to the caller) when the receiver is far behind,
 * so memory held in queues stays bounded. */
static int q_push(queue_t *q, blk_t b) {
    pthread_mutex_lock(&q->mu);
    if (q->closed || q->len >= queue_limit) {
        pthread_mutex_unlock(&q->mu);
        return 0;
    }
    if (q->len == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 64;
        blk_t *ni = realloc(q->items, nc * sizeof *ni);
        CHECK(ni != NULL, "queue realloc to %zu entries failed", nc);
        if (!ni) {
            pthread_mutex_unlock(&q->mu);
            return 0;
        }
        q->items = ni;
        q->cap = nc;
    }
    q->items[q->len++] = b;
    pthread_mutex_unlock(&q->mu);
    return 1;
}
/* Take everything queued for us, then check and free it outside the lock. */
static size_t q_drain(queue_t *q, const char *where) {
    pthread_mutex_lock(&q->mu);
    blk_t *items = q->items;
    size_t len = q->len;
    q->items = NULL;
    q->len = q->cap = 0;
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < len; i++) release_block(&items[i], where);
    free(items);
    return len;
}

/* ------------------------------------------------------------------ */
/* phase 1                                                             */

enum { MAX_LOCAL_SLOTS = 256 };
static int local_slots = MAX_LOCAL_SLOTS; /* fewer with many threads, to bound RSS */
static atomic_long remote_frees;

static pthread_barrier_t start_barrier;

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    pthread_barrier_wait(&start_barrier);
    t_rng r = {opt_seed * 1315423911u + (uint64_t)me};
    blk_t local[MAX_LOCAL_SLOTS];
    memset(local, 0, sizeof local);
    for (long i = 0; i < opt_ops; i++) {
        blk_t b;
        if (!alloc_block(&r, &b)) continue;
        if (opt_threads > 1 && t_below(&r, 2) == 0) {
            int to = (int)t_below(&r, (uint64_t)opt_threads - 1);
            if (to >= me) to++;
            if (!q_push(&queues[to], b)) release_block(&b, "backlog");
        } else {
            blk_t *slot = &local[t_below(&r, (uint64_t)local_slots)];
            release_block(slot, "local");
            *slot = b;
        }
        if ((i & 15) == 0) atomic_fetch_add(&remote_frees, (long)q_drain(&queues[me], "remote"));
    }
    for (int s = 0; s < local_slots; s++) release_block(&local[s], "local-final");
    pthread_mutex_lock(&queues[me].mu);
    queues[me].closed = 1;
    pthread_mutex_unlock(&queues[me].mu);
    atomic_fetch_add(&remote_frees, (long)q_drain(&queues[me], "remote"));
    return NULL;
}

/* ------------------------------------------------------------------ */
/* phase 2: thread churn with a shared pool                            */

enum { POOL = 1024 };
static blk_t pool[POOL];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;

static void *churner(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    t_rng r = {opt_seed ^ (id * 0x2545F4914F6CDD1Dull)};
    blk_t mine[64];
    int nm = 0;
    for (int i = 0; i < 300; i++) {
        blk_t b;
        if (!alloc_block(&r, &b)) continue;
        if (t_below(&r, 3) == 0) {
            /* leave it for someone else; free whatever was there */
            blk_t old;
            size_t k = t_below(&r, POOL);
            pthread_mutex_lock(&pool_mu);
            old = pool[k];
            pool[k] = b;
            pthread_mutex_unlock(&pool_mu);
            release_block(&old, "pool");
        } else if (nm < 64) {
            mine[nm++] = b;
        } else {
            release_block(&b, "churn-local");
        }
        if (nm && t_below(&r, 4) == 0) release_block(&mine[--nm], "churn-local");
    }
    while (nm) release_block(&mine[--nm], "churn-local");
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc) opt_threads = atoi(argv[++i]);
        else if (!strcmp(a, "--ops") && i + 1 < argc) opt_ops = atol(argv[++i]);
        else if (!strcmp(a, "--churn-rounds") && i + 1 < argc) opt_churn_rounds = atoi(argv[++i]);
        else if (!strcmp(a, "--churn-threads") && i + 1 < argc) opt_churn_threads = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--max-size") && i + 1 < argc) opt_max_size = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--expect-lib") && i + 1 < argc) opt_lib = argv[++i];
        else if (!strcmp(a, "--no-aligned")) opt_no_aligned = 1;
        else {
            fprintf(stderr, "mt_stress: unknown argument %s\n", a);
            return 2;
        }
    }
    if (opt_threads < 1 || opt_max_size < 1) return 2;
    local_slots = 4096 / opt_threads;
    if (local_slots > MAX_LOCAL_SLOTS) local_slots = MAX_LOCAL_SLOTS;
    if (local_slots < 16) local_slots = 16;
    queue_limit = 4096 / (size_t)opt_threads;
    if (queue_limit > 512) queue_limit = 512;
    if (queue_limit < 64) queue_limit = 64;
    t_arm_alarm("mt_stress", 240);
    t_check_loaded(opt_lib);

    queues = calloc((size_t)opt_threads, sizeof *queues);
    for (int t = 0; t < opt_threads; t++) pthread_mutex_init(&queues[t].mu, NULL);
    pthread_t *th = calloc((size_t)opt_threads, sizeof *th);
    pthread_barrier_init(&start_barrier, NULL, (unsigned)opt_threads);
    for (int t = 0; t < opt_threads; t++) {
        int rc = pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
        if (rc) {
            fprintf(stderr, "FAIL pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    for (int t = 0; t < opt_threads; t++) pthread_join(th[t], NULL);
    /* late arrivals pushed after their receiver finished */
    for (int t = 0; t < opt_threads; t++) atomic_fetch_add(&remote_frees, (long)q_drain(&queues[t], "late"));

    pthread_t *ct = calloc((size_t)opt_churn_threads, sizeof *ct);
    for (int round = 0; round < opt_churn_rounds; round++) {
        for (int t = 0; t < opt_churn_threads; t++) {
            int rc = pthread_create(&ct[t], NULL, churner, (void *)(uintptr_t)(round * 1000 + t));
            if (rc) {
                fprintf(stderr, "FAIL pthread_create (churn): %s\n", strerror(rc));
                return 1;
            }
        }
        for (int t = 0; t < opt_churn_threads; t++) pthread_join(ct[t], NULL);
    }
    for (int k = 0; k < POOL; k++) release_block(&pool[k], "pool-final");

    for (int t = 0; t < opt_threads; t++) pthread_mutex_destroy(&queues[t].mu);
    free(queues);
    free(th);
    free(ct);
    t_check_loaded(opt_lib);

    long f = T_FAIL_GET();
    printf("mt_stress: threads=%d ops/thread=%ld remote-frees=%ld churn=%dx%d tags=%lu\n", opt_threads, opt_ops,
           atomic_load(&remote_frees), opt_churn_rounds, opt_churn_threads, atomic_load(&tag_counter));
    if (f) {
        fprintf(stderr, "mt_stress: %ld check(s) FAILED\n", f);
        return 1;
    }
    printf("mt_stress: all checks passed\n");
    return 0;
}
