// A host that loads hz3 with dlopen instead of LD_PRELOAD (issue 18 item 7):
//
//   dlopen_host HZ3.so [FILLER.so ...]
//
// First dlopens each FILLER (a library with initial-exec TLS, tls_filler.c),
// largest first, to use up glibc's static TLS surplus, then checks that a
// 16-byte initial-exec probe (the last FILLER) no longer fits: static TLS is
// exhausted. Then dlopens HZ3.so and calls its malloc, calloc, realloc,
// malloc_usable_size and free, taken with dlsym from the handle, from 8
// threads at once, checking every byte. hz3's functions must be the
// library's own, not libc's (the host is not linked against hz3).
//
// Exit 0 and "dlopen_host: ok" on success; exit 3 and "dlopen_host: dlopen
// failed: <dlerror>" when HZ3.so does not load; 1 on any other failure.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef size_t (*usable_fn)(void *);

static malloc_fn h_malloc;
static calloc_fn h_calloc;
static realloc_fn h_realloc;
static free_fn h_free;
static usable_fn h_usable;

#define THREADS 8
#define ROUNDS 20000
#define LIVE 64

static int fill_check(unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 1;
    return 0;
}

static void *worker(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    unsigned char *live[LIVE] = {0};
    size_t size[LIVE] = {0};
    uint32_t x = 2463534242u ^ (uint32_t)(id * 7919);
    for (int r = 0; r < ROUNDS; r++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int k = (int)(x % LIVE);
        unsigned char tag = (unsigned char)(k + id * LIVE);
        if (live[k]) {
            if (fill_check(live[k], size[k], tag)) {
                fprintf(stderr, "FAIL: thread %lu: block %d corrupted\n", (unsigned long)id, k);
                return (void *)1;
            }
            if (x & 0x100) {
                // realloc keeps the contents up to the smaller size.
                size_t n = 1 + (x >> 20) % 3000;
                unsigned char *q = h_realloc(live[k], n);
                if (!q) return (void *)1;
                size_t keep = n < size[k] ? n : size[k];
                if (fill_check(q, keep, tag)) {
                    fprintf(stderr, "FAIL: thread %lu: realloc lost contents\n", (unsigned long)id);
                    return (void *)1;
                }
                memset(q, tag, n);
                live[k] = q;
                size[k] = n;
                continue;
            }
            h_free(live[k]);
            live[k] = NULL;
            continue;
        }
        size_t n = 1 + (x >> 8) % ((x & 0x80) ? 70000 : 512);
        unsigned char *p;
        if (x & 0x40) {
            p = h_calloc(1, n);
            if (p && fill_check(p, n, 0)) {
                fprintf(stderr, "FAIL: thread %lu: calloc memory not zero\n", (unsigned long)id);
                return (void *)1;
            }
        } else {
            p = h_malloc(n);
        }
        if (!p || h_usable(p) < n) {
            fprintf(stderr, "FAIL: thread %lu: allocation of %zu failed or too small\n", (unsigned long)id, n);
            return (void *)1;
        }
        memset(p, tag, n);
        live[k] = p;
        size[k] = n;
    }
    for (int k = 0; k < LIVE; k++) h_free(live[k]);
    return NULL;
}

static void *free_all(void *arg) {
    void **v = arg;
    for (int i = 0; i < 1000; i++) h_free(v[i]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: dlopen_host HZ3.so [FILLER.so ...]\n");
        return 2;
    }
    if (dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD)) {
        fprintf(stderr, "FAIL: %s is already loaded (preloaded or linked); the test would prove nothing\n", argv[1]);
        return 1;
    }
    int loaded = 0;
    for (int i = 2; i < argc; i++) {
        void *f = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
        if (f) {
            char *(*touch)(void) = (char *(*)(void))dlsym(f, "fill_touch");
            if (touch) touch();
            loaded++;
        } else if (i == argc - 1) {
            printf("dlopen_host: static TLS exhausted (probe: %s)\n", dlerror());
        }
        if (f && i == argc - 1 && argc > 3) {
            fprintf(stderr, "FAIL: the last filler (16-byte probe) still loaded: static TLS is not exhausted\n");
            return 1;
        }
    }
    printf("dlopen_host: %d filler(s) loaded\n", loaded);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("dlopen_host: dlopen failed: %s\n", dlerror());
        return 3;
    }
    h_malloc = (malloc_fn)dlsym(h, "malloc");
    h_calloc = (calloc_fn)dlsym(h, "calloc");
    h_realloc = (realloc_fn)dlsym(h, "realloc");
    h_free = (free_fn)dlsym(h, "free");
    h_usable = (usable_fn)dlsym(h, "malloc_usable_size");
    if (!h_malloc || !h_calloc || !h_realloc || !h_free || !h_usable) {
        fprintf(stderr, "FAIL: missing allocation symbols in %s\n", argv[1]);
        return 1;
    }
    // The functions must come from the loaded library, not from libc.
    Dl_info info;
    if (!dladdr((void *)h_malloc, &info) || !info.dli_fname || !strstr(info.dli_fname, "hz3")) {
        fprintf(stderr, "FAIL: dlsym(h, \"malloc\") is not in hz3 (%s)\n", info.dli_fname ? info.dli_fname : "?");
        return 1;
    }
    if ((void *)h_malloc == dlsym(RTLD_DEFAULT, "malloc")) {
        fprintf(stderr, "FAIL: hz3's malloc is the process's malloc: was it preloaded?\n");
        return 1;
    }
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i)) return 1;
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        if (rv) bad = 1;
    }
    if (bad) return 1;
    // Blocks allocated here and freed by another thread (remote frees).
    static void *blocks[1000];
    for (int i = 0; i < 1000; i++)
        if (!(blocks[i] = h_malloc(16 + i))) return 1;
    pthread_t f;
    if (pthread_create(&f, NULL, free_all, blocks)) return 1;
    pthread_join(f, NULL);
    // Stats from hz3 itself prove the calls went through its caches.
    size_t (*json)(char *, size_t) = (size_t(*)(char *, size_t))dlsym(h, "hz3_stats_json");
    if (json) {
        char buf[256];
        json(buf, sizeof buf);
        printf("dlopen_host: stats %.60s...\n", buf);
    }
    puts("dlopen_host: ok");
    return 0;
}
