/* fork_stress.c - fork while other threads allocate (no deadlock, no corruption).
 *
 * Worker threads allocate, fill, verify and free continuously, and pass
 * blocks to each other (remote frees), so at any instant some thread is
 * likely inside the allocator, holding whatever lock it uses.  A forker
 * thread (and the main thread, less often) forks repeatedly.  Each child
 * allocates and frees across small/medium/large sizes, checks blocks it
 * inherited from the parent, starts a thread that allocates too, and exits
 * with _exit(0), or 1 on corruption.  A child that hangs is killed by its
 * own alarm; the whole program has an alarm too, so a deadlock is a
 * failure, never a hang.
 *
 * Build: cc -O1 -fno-builtin -pthread -I. fork_stress.c -o fork_stress -ldl
 * Flags: --forks N (200)  --workers N (3)  --expect-lib NAME  --timeout S (120)
 */
#define _GNU_SOURCE
#include "common.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

static int opt_forks = 200;
static int opt_workers = 3;
static unsigned opt_timeout = 120;
static const char *opt_lib;

static atomic_int stop_workers;
static atomic_long worker_ops;

/* A block shared between workers: [size][tag][pattern...] */
typedef struct {
    pthread_mutex_t mu;
    unsigned char *p;
    size_t n;
    uint64_t tag;
} slot_t;
enum { NSLOTS = 64 };
static slot_t slots[NSLOTS];

static size_t rand_size(t_rng *r) {
    switch (t_below(r, 10)) {
    case 0: return 4097 + t_below(r, 60000);
    case 1: return 64 * 1024 + t_below(r, 400 * 1024); /* crosses the 256 KiB large boundary */
    default: return 1 + t_below(r, 2048);
    }
}

static void *worker(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    t_rng r = {id * 7777 + 1};
    unsigned char *mine[32] = {0};
    size_t mn[32] = {0};
    uint64_t mt[32] = {0};
    while (!atomic_load(&stop_workers)) {
        int k = (int)t_below(&r, 32);
        if (mine[k]) {
            CHECK(t_verify(mine[k], mn[k], mt[k]) == (size_t)-1, "parent worker block corrupted (size %zu)", mn[k]);
            free(mine[k]);
        }
        mn[k] = rand_size(&r);
        mt[k] = t_next(&r);
        mine[k] = malloc(mn[k]);
        CHECK(mine[k] != NULL, "malloc(%zu) NULL in worker", mn[k]);
        if (mine[k]) t_fill(mine[k], mn[k], mt[k]);

        /* swap a block through a shared slot: it will be freed by another thread */
        slot_t *s = &slots[t_below(&r, NSLOTS)];
        size_t n = rand_size(&r);
        uint64_t tag = t_next(&r);
        unsigned char *p = malloc(n);
        if (p) t_fill(p, n, tag);
        pthread_mutex_lock(&s->mu);
        unsigned char *old = s->p;
        size_t on = s->n;
        uint64_t ot = s->tag;
        s->p = p;
        s->n = n;
        s->tag = tag;
        pthread_mutex_unlock(&s->mu);
        if (old) {
            CHECK(t_verify(old, on, ot) == (size_t)-1, "shared block corrupted in parent (size %zu)", on);
            free(old);
        }
        atomic_fetch_add(&worker_ops, 1);
    }
    for (int k = 0; k < 32; k++) free(mine[k]);
    return NULL;
}

/* ---- child side: only allocator calls, write(2) and _exit ---- */

static void child_say(const char *msg) {
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
}

static void *child_thread(void *arg) {
    t_rng r = {(uint64_t)(uintptr_t)arg};
    for (int i = 0; i < 100; i++) {
        size_t n = rand_size(&r);
        unsigned char *p = malloc(n);
        if (!p) return (void *)1;
        t_fill(p, n, i);
        if (t_verify(p, n, i) != (size_t)-1) return (void *)1;
        free(p);
    }
    return NULL;
}

static int child_work(uint64_t seed) {
    /* a deadlocked child times out (exit 124) and the parent reports it */
    t_alarm_what = "fork_stress child (allocator deadlocked after fork)";
    alarm(20);
    int bad = 0;
    /* Blocks inherited from the parent must still read back right.  A slot
     * whose lock was held at fork time may be half-updated: skip it (its
     * owner thread does not exist here, so trylock fails for good). */
    int usable_slot[NSLOTS];
    for (int i = 0; i < NSLOTS; i++) {
        slot_t *s = &slots[i];
        usable_slot[i] = pthread_mutex_trylock(&s->mu) == 0;
        if (usable_slot[i] && s->p && t_verify(s->p, s->n, s->tag) != (size_t)-1) {
            child_say("FAIL child: inherited block corrupted\n");
            bad = 1;
        }
    }
    t_rng r = {seed};
    unsigned char *keep[64] = {0};
    size_t kn[64] = {0};
    for (int i = 0; i < 200; i++) {
        int k = (int)t_below(&r, 64);
        if (keep[k]) {
            if (t_verify(keep[k], kn[k], (uint64_t)k + seed) != (size_t)-1) {
                child_say("FAIL child: own block corrupted\n");
                bad = 1;
            }
            free(keep[k]);
        }
        kn[k] = rand_size(&r);
        switch (i % 5) {
        case 0: keep[k] = calloc(1, kn[k]); break;
        case 1: keep[k] = realloc(malloc(8), kn[k]); break;
        case 2: keep[k] = aligned_alloc(64, kn[k]); break;
        default: keep[k] = malloc(kn[k]); break;
        }
        if (!keep[k]) {
            child_say("FAIL child: allocation returned NULL\n");
            return 1;
        }
        t_fill(keep[k], kn[k], (uint64_t)k + seed);
    }
    /* free some inherited blocks too (memory of parent threads) */
    for (int i = 0; i < NSLOTS; i += 3)
        if (usable_slot[i] && slots[i].p) {
            free(slots[i].p);
            slots[i].p = NULL;
        }
    pthread_t th;
    if (pthread_create(&th, NULL, child_thread, (void *)(uintptr_t)(seed + 1)) == 0) {
        void *ret = NULL;
        pthread_join(th, &ret);
        if (ret) {
            child_say("FAIL child: thread in child saw a bad block\n");
            bad = 1;
        }
    }
    for (int k = 0; k < 64; k++) free(keep[k]);
    return bad;
}

static atomic_int forks_done;
static atomic_int fork_failures;

static int do_one_fork(uint64_t seed) {
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "FAIL fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) _exit(child_work(seed));
    int st = 0;
    pid_t w;
    do {
        w = waitpid(pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    if (w != pid) {
        fprintf(stderr, "FAIL waitpid: %s\n", strerror(errno));
        return 1;
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "FAIL child %d killed by signal %d%s\n", (int)pid, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (SIGALRM: child deadlocked after fork)" : "");
        return 1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "FAIL child %d exited with status %d%s\n", (int)pid, WEXITSTATUS(st),
                WEXITSTATUS(st) == 124 ? " (timed out: deadlock after fork)" : "");
        return 1;
    }
    return 0;
}

static void *forker(void *arg) {
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        if (do_one_fork((uint64_t)i * 31 + 5)) atomic_fetch_add(&fork_failures, 1);
        atomic_fetch_add(&forks_done, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--forks") && i + 1 < argc) opt_forks = atoi(argv[++i]);
        else if (!strcmp(a, "--workers") && i + 1 < argc) opt_workers = atoi(argv[++i]);
        else if (!strcmp(a, "--timeout") && i + 1 < argc) opt_timeout = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--expect-lib") && i + 1 < argc) opt_lib = argv[++i];
        else {
            fprintf(stderr, "fork_stress: unknown argument %s\n", a);
            return 2;
        }
    }
    t_arm_alarm("fork_stress (parent)", opt_timeout);
    t_check_loaded(opt_lib);
    for (int i = 0; i < NSLOTS; i++) pthread_mutex_init(&slots[i].mu, NULL);

    pthread_t *w = calloc((size_t)opt_workers, sizeof *w);
    for (int i = 0; i < opt_workers; i++) pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1));

    /* most forks from a dedicated thread, some from the main thread */
    int from_thread = opt_forks - opt_forks / 4;
    pthread_t ft;
    pthread_create(&ft, NULL, forker, (void *)(intptr_t)from_thread);
    for (int i = 0; i < opt_forks / 4; i++) {
        if (do_one_fork(1000003u + (uint64_t)i)) atomic_fetch_add(&fork_failures, 1);
        atomic_fetch_add(&forks_done, 1);
        /* the parent keeps allocating between forks */
        void *p = malloc(1000 + (size_t)i * 100);
        memset(p, 1, 1000 + (size_t)i * 100);
        free(p);
    }
    pthread_join(ft, NULL);
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < opt_workers; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < NSLOTS; i++) {
        if (slots[i].p)
            CHECK(t_verify(slots[i].p, slots[i].n, slots[i].tag) == (size_t)-1, "shared block corrupted at end");
        free(slots[i].p);
    }
    free(w);
    t_check_loaded(opt_lib);

    int ff = atomic_load(&fork_failures);
    printf("fork_stress: forks=%d failed-children=%d worker-ops=%ld\n", atomic_load(&forks_done), ff,
           atomic_load(&worker_ops));
    if (ff || T_FAIL_GET()) {
        fprintf(stderr, "fork_stress: FAILED (%d bad children, %ld failed checks)\n", ff, T_FAIL_GET());
        return 1;
    }
    printf("fork_stress: all checks passed\n");
    return 0;
}
