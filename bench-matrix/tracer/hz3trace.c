/*
 * hz3trace: a small LD_PRELOAD allocation tracer over glibc for bench-matrix.
 *
 *   cc -O2 -shared -fPIC -o hz3trace.so hz3trace.c -ldl -lpthread
 *   HZ3TRACE_OUT=/tmp/x.hz3trc LD_PRELOAD=./hz3trace.so some-program
 *
 * Every malloc, calloc, realloc, reallocarray, free, memalign, posix_memalign,
 * aligned_alloc, valloc and pvalloc of the process is forwarded to the next
 * definition (glibc, via dlsym(RTLD_NEXT)) and recorded as one compact binary
 * record in the hz3trc format that bench-matrix/src/trace.rs reads:
 *
 *   header (48 bytes, little-endian, written last with pwrite):
 *     "HZ3TRC01", u32 version = 1, u16 threads, u16 sample (1: every
 *     object), u64 events, u64 objects, u64 body_len, u64 fnv1a64(body)
 *   body, one record per call:
 *     byte  op | thread << 3      op: 1 malloc, 2 calloc, 3 memalign,
 *                                      4 free, 5 realloc; thread: 0..31
 *     malloc, calloc:  LEB128 size                       (new object)
 *     memalign:        byte log2(alignment), LEB128 size (new object)
 *     free:            LEB128 back                       (object id = next_id - 1 - back)
 *     realloc:         LEB128 back, LEB128 new size      (object keeps its id)
 *
 * Objects are numbered 0, 1, 2, ... in allocation order; addresses never reach
 * the file. A block allocated before tracing started (or by the dlsym
 * bootstrap) is unknown: its free is not recorded, its realloc is recorded as
 * a fresh malloc. realloc(NULL, n) is a malloc, realloc(p, 0) a free.
 * Threads are numbered in order of their first call; the 32nd and later share
 * index 31.
 *
 * Invariants that make it safe inside an allocator hook:
 *  - nothing here allocates: the output buffer (1 MiB) and the address->id
 *    table (open addressing, 4 Mi entries, backward-shift deletion) are static;
 *    output leaves through write(2)/pwrite(2) only;
 *  - a thread-local `in_hook` flag (initial-exec TLS, no allocation) makes a
 *    call made from inside the tracer (dlsym, write) pass straight through;
 *  - before the real functions are resolved, allocations come from a static
 *    bump arena, and frees of arena blocks are ignored;
 *  - one spinlock serialises glibc's call, the table, the counters and the
 *    buffer, so the record order is the real order of the calls and an
 *    address cannot be handed out again before the table forgets it (a
 *    tracer need not scale);
 *  - after fork() the child stops recording (pthread_atfork), and after the
 *    destructor finalised the file every hook passes straight through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OP_MALLOC = 1, OP_CALLOC = 2, OP_MEMALIGN = 3, OP_FREE = 4, OP_REALLOC = 5 };

#define HDR_LEN 48
#define BUF_LEN (1u << 20)
#define TAB_BITS 22
#define TAB_LEN (1u << TAB_BITS)
#define ARENA_LEN (256u << 10)
#define MAX_THREADS 32

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_memalign)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

static __thread int in_hook __attribute__((tls_model("initial-exec")));
static __thread int thread_index __attribute__((tls_model("initial-exec"))) = -1;

static int out_fd = -1;
static volatile int active;   /* recording */
static volatile int resolving;
static int lock_word;
static int next_thread;

static unsigned char buf[BUF_LEN];
static size_t buf_used;
static uint64_t body_len, body_hash = 0xcbf29ce484222325ull;
static uint64_t n_events, n_objects;
static uint32_t n_threads;

static uintptr_t tab_key[TAB_LEN];
static uint64_t tab_id[TAB_LEN];

static unsigned char arena[ARENA_LEN] __attribute__((aligned(64)));
static size_t arena_used;

static void say(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void lock(void) {
    while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&lock_word, __ATOMIC_RELAXED))
            __builtin_ia32_pause();
}
static void unlock(void) { __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE); }

static int in_arena(void *p) {
    return (unsigned char *)p >= arena && (unsigned char *)p < arena + ARENA_LEN;
}

static void *arena_alloc(size_t size, size_t align) {
    if (align < 16) align = 16;
    size_t off;
    /* Bootstrap only (single-threaded in practice); a CAS keeps it sound anyway. */
    for (;;) {
        size_t cur = __atomic_load_n(&arena_used, __ATOMIC_RELAXED);
        off = (cur + align - 1) & ~(align - 1);
        if (off + size > ARENA_LEN) return NULL;
        if (__atomic_compare_exchange_n(&arena_used, &cur, off + size, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return arena + off;
    }
}

/* ---- output (lock held) ---- */

static void flush_buf(void) {
    size_t done = 0;
    while (done < buf_used) {
        ssize_t w = write(out_fd, buf + done, buf_used - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            say("hz3trace: write failed, recording stopped\n");
            active = 0;
            break;
        }
        done += (size_t)w;
    }
    buf_used = 0;
}

static void put(unsigned char b) {
    if (buf_used == BUF_LEN) flush_buf();
    buf[buf_used++] = b;
    body_len++;
    body_hash = (body_hash ^ b) * 0x100000001b3ull;
}

static void put_varint(uint64_t v) {
    while (v >= 0x80) {
        put((unsigned char)(v | 0x80));
        v >>= 7;
    }
    put((unsigned char)v);
}

static void put_op(int op) {
    if (thread_index < 0) {
        thread_index = next_thread < MAX_THREADS ? next_thread++ : MAX_THREADS - 1;
        if ((uint32_t)thread_index + 1 > n_threads) n_threads = (uint32_t)thread_index + 1;
    }
    put((unsigned char)(op | thread_index << 3));
    n_events++;
}

/* ---- address -> object id (lock held) ---- */

static size_t slot_of(uintptr_t a) {
    uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> (64 - TAB_BITS));
}

/* Returns the index holding `a`, or -1. */
static long tab_find(uintptr_t a) {
    size_t i = slot_of(a);
    for (;;) {
        if (tab_key[i] == a) return (long)i;
        if (tab_key[i] == 0) return -1;
        i = (i + 1) & (TAB_LEN - 1);
    }
}

static void tab_remove_at(size_t i) {
    /* Backward-shift deletion keeps every probe chain unbroken. */
    size_t j = i;
    for (;;) {
        tab_key[i] = 0;
        for (;;) {
            j = (j + 1) & (TAB_LEN - 1);
            if (tab_key[j] == 0) return;
            size_t home = slot_of(tab_key[j]);
            /* Move j back to i unless its home lies cyclically in (i, j]. */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) break;
        }
        tab_key[i] = tab_key[j];
        tab_id[i] = tab_id[j];
        i = j;
    }
}

static uint64_t live_count, n_stale;

static void record_free_of(uint64_t id);

static void tab_insert(uintptr_t a, uint64_t id) {
    long f = tab_find(a);
    if (f >= 0) {
        /* Freed behind our back (by a path no hook sees): close the stale object. */
        n_stale++;
        record_free_of(tab_id[f]);
        tab_id[f] = id;
        return;
    }
    if (live_count >= TAB_LEN - TAB_LEN / 8) {
        say("hz3trace: more than 3.5 Mi live blocks, recording stopped\n");
        active = 0;
        return;
    }
    size_t i = slot_of(a);
    while (tab_key[i] != 0) i = (i + 1) & (TAB_LEN - 1);
    tab_key[i] = a;
    tab_id[i] = id;
    live_count++;
}

static void record_free_of(uint64_t id) {
    put_op(OP_FREE);
    put_varint(n_objects - 1 - id);
}

/* ---- recording (lock held) ---- */

static void rec_new(int op, void *p, size_t size, unsigned align_log2) {
    if (!active || p == NULL || in_arena(p)) return;
    uint64_t id = n_objects++;
    put_op(op);
    if (op == OP_MEMALIGN) put((unsigned char)align_log2);
    put_varint(size);
    tab_insert((uintptr_t)p, id);
}

static void rec_free(void *p) {
    if (!active || p == NULL) return;
    long f = tab_find((uintptr_t)p);
    if (f >= 0) {
        record_free_of(tab_id[f]);
        tab_remove_at((size_t)f);
        live_count--;
    }
}

/* realloc(p, size) returned q (p non-NULL and not from the arena, size > 0,
 * q non-NULL). */
static void rec_realloc(void *p, void *q, size_t size) {
    if (!active) return;
    long f = tab_find((uintptr_t)p);
    if (f < 0) {
        rec_new(OP_MALLOC, q, size, 0);
        return;
    }
    uint64_t id = tab_id[f];
    put_op(OP_REALLOC);
    put_varint(n_objects - 1 - id);
    put_varint(size);
    if (q != p) {
        tab_remove_at((size_t)f);
        live_count--;
        tab_insert((uintptr_t)q, id);
    }
}

static unsigned log2_of(size_t a) {
    unsigned l = 0;
    while (((size_t)1 << l) < a && l < 63) l++;
    return l;
}

/* ---- setup and teardown ---- */

static void stop_in_child(void) { active = 0; }

static void resolve(void) {
    if (real_malloc) return;
    resolving = 1;
    in_hook++;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_valloc = dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    in_hook--;
    resolving = 0;
    if (!real_malloc || !real_free || !real_calloc || !real_realloc) {
        say("hz3trace: dlsym(RTLD_NEXT) failed\n");
        _exit(127);
    }
}

__attribute__((constructor)) static void hz3trace_init(void) {
    resolve();
    const char *path = getenv("HZ3TRACE_OUT");
    if (!path || !*path) return;
    in_hook++;
    out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
        say("hz3trace: cannot open HZ3TRACE_OUT, not recording\n");
        in_hook--;
        return;
    }
    unsigned char zero[HDR_LEN] = {0};
    if (write(out_fd, zero, HDR_LEN) != HDR_LEN) {
        say("hz3trace: cannot write header, not recording\n");
        in_hook--;
        return;
    }
    pthread_atfork(NULL, NULL, stop_in_child);
    in_hook--;
    active = 1;
}

static void le(unsigned char *d, uint64_t v, int n) {
    for (int i = 0; i < n; i++) d[i] = (unsigned char)(v >> (8 * i));
}

__attribute__((destructor)) static void hz3trace_fini(void) {
    if (!active) return;
    lock();
    active = 0;
    flush_buf();
    unsigned char h[HDR_LEN];
    memcpy(h, "HZ3TRC01", 8);
    le(h + 8, 1, 4);
    le(h + 12, n_threads ? n_threads : 1, 2);
    le(h + 14, 1, 2); /* sample: every object */
    le(h + 16, n_events, 8);
    le(h + 24, n_objects, 8);
    le(h + 32, body_len, 8);
    le(h + 40, body_hash, 8);
    if (pwrite(out_fd, h, HDR_LEN, 0) != HDR_LEN) say("hz3trace: cannot write header\n");
    close(out_fd);
    if (getenv("HZ3TRACE_VERBOSE")) {
        char m[160], *e = m + sizeof m, *s = e;
        uint64_t v[3] = {n_events, n_objects, n_stale};
        const char *lab[3] = {" events, ", " objects, ", " freed unseen (closed at address reuse)\n"};
        *--s = 0;
        for (int k = 2; k >= 0; k--) {
            size_t l = strlen(lab[k]);
            s -= l;
            memcpy(s, lab[k], l);
            uint64_t x = v[k];
            do *--s = (char)('0' + x % 10); while ((x /= 10) != 0);
        }
        say("hz3trace: ");
        say(s);
        (void)e;
    }
    unlock();
}

/* ---- the hooks ----
 * Pattern: a call from inside the tracer (in_hook) or while not recording goes
 * straight to glibc; otherwise the glibc call and its record happen under the
 * lock, so the file's order is the real order (a tracer need not be fast). */

#define ENTER() do { in_hook++; lock(); } while (0)
#define LEAVE() do { unlock(); in_hook--; } while (0)

void *malloc(size_t size) {
    if (!real_malloc) {
        if (resolving) return arena_alloc(size, 16);
        resolve();
    }
    if (in_hook || !active) return real_malloc(size);
    ENTER();
    void *p = real_malloc(size);
    rec_new(OP_MALLOC, p, size, 0);
    LEAVE();
    return p;
}

void *calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!real_calloc) {
        /* dlsym's own calloc while resolving: the static arena is zeroed. */
        if (resolving) return arena_alloc(total, 16);
        resolve();
    }
    if (in_hook || !active) return real_calloc(n, size);
    ENTER();
    void *p = real_calloc(n, size);
    rec_new(OP_CALLOC, p, total, 0);
    LEAVE();
    return p;
}

void free(void *p) {
    if (p == NULL || in_arena(p)) return;
    if (!real_free) resolve();
    if (in_hook || !active) {
        real_free(p);
        return;
    }
    ENTER();
    rec_free(p);
    real_free(p);
    LEAVE();
}

void *realloc(void *p, size_t size) {
    if (!real_realloc) {
        if (resolving) return arena_alloc(size, 16);
        resolve();
    }
    if (p != NULL && in_arena(p)) {
        /* A bootstrap block: copy it to the real heap; the arena keeps it.
         * (Copying `size` bytes may read past the old block, but stays
         * inside the static arena or the new block's size.) */
        void *q = malloc(size);
        if (q) {
            size_t room = (size_t)(arena + ARENA_LEN - (unsigned char *)p);
            memcpy(q, p, size < room ? size : room);
        }
        return q;
    }
    if (in_hook || !active) return real_realloc(p, size);
    if (p == NULL) return malloc(size);
    if (size == 0) {
        free(p);
        return NULL;
    }
    ENTER();
    void *q = real_realloc(p, size);
    if (q != NULL) rec_realloc(p, q, size);
    LEAVE();
    return q;
}

void *reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

static void *aligned_real(size_t align, size_t size, int which) {
    switch (which) {
    case 0: return real_memalign(align, size);
    case 1: return real_aligned_alloc ? real_aligned_alloc(align, size) : real_memalign(align, size);
    case 2: return real_valloc ? real_valloc(size) : real_memalign(4096, size);
    default: return real_pvalloc ? real_pvalloc(size) : real_memalign(4096, (size + 4095) & ~(size_t)4095);
    }
}

static void *aligned_common(size_t align, size_t size, int which) {
    if (!real_memalign) {
        if (resolving) return arena_alloc(size, align);
        resolve();
    }
    if (in_hook || !active) return aligned_real(align, size, which);
    ENTER();
    void *p = aligned_real(align, size, which);
    rec_new(OP_MEMALIGN, p, size, log2_of(align));
    LEAVE();
    return p;
}

void *memalign(size_t align, size_t size) { return aligned_common(align, size, 0); }
void *aligned_alloc(size_t align, size_t size) { return aligned_common(align, size, 1); }
void *valloc(size_t size) { return aligned_common(4096, size, 2); }
void *pvalloc(size_t size) { return aligned_common(4096, size, 3); }

int posix_memalign(void **out, size_t align, size_t size) {
    if (!real_posix_memalign) {
        if (resolving) {
            *out = arena_alloc(size, align);
            return *out ? 0 : ENOMEM;
        }
        resolve();
    }
    if (in_hook || !active) return real_posix_memalign(out, align, size);
    ENTER();
    int r = real_posix_memalign(out, align, size);
    if (r == 0) rec_new(OP_MEMALIGN, *out, size, log2_of(align));
    LEAVE();
    return r;
}
