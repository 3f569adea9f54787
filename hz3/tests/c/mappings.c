/* Mappings, commit and large-block accounting (issue 17, items 3, 5, 6, 7).
 * One mode per run (argv[1]); each prints its figures on stdout and exits 1
 * after any FAIL line.
 *
 *   aligned  150,000 x posix_memalign(8192, 64) all succeed, the process keeps
 *            few mappings (one mapping per block exhausted vm.max_map_count:
 *            ENOMEM, then pthread_create and malloc(1 MiB) failed too), and
 *            after freeing them the count is back near the start; alignments
 *            up to 64 KiB through every aligned entry point.
 *   munmap   munmap is refused (this program defines munmap, which interposes
 *            the C library's for the allocator too) while large blocks are
 *            freed and trimmed, then allowed again: no mapping may be lost
 *            (address space and mapping count back to where they started).
 *   hblks    mallinfo2().hblks / hblkhd count live large blocks: back to the
 *            start after the blocks are freed, also after cache reuse.
 *   small5g  more than 4 GiB of small blocks (the largest small size, only
 *            the first page touched): no block becomes a mapping of its own
 *            (hblks stays 0, the mapping count stays small).
 *   commit   after a mix of allocations, the writable private mappings of the
 *            process (what strict overcommit charges) stay small.
 */
#include "common.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

/* ------------------------------------------------------------ munmap shim */

static volatile int refuse_munmap;
static volatile long munmap_refused;

int munmap(void *addr, size_t len) {
    if (refuse_munmap) {
        munmap_refused++;
        errno = ENOMEM;
        return -1;
    }
    return (int)syscall(SYS_munmap, addr, len);
}

/* ------------------------------------------------------------ /proc readers */

static long maps_count(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n') n++;
    fclose(f);
    return n;
}

/* VmSize in KiB. */
static long vm_size_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &v) == 1) break;
    fclose(f);
    return v;
}

/* Sum of the sizes of writable private mappings (KiB): what the kernel
 * charges against the commit limit under vm.overcommit_memory=2. */
static long writable_private_kib(void) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    long total = 0;
    int counting = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && strchr(line, ' ') &&
            line[0] != ' ' && strlen(perms) == 4) {
            counting = perms[1] == 'w' && perms[3] == 'p';
            continue;
        }
        long kib;
        if (counting && sscanf(line, "Size: %ld kB", &kib) == 1) total += kib;
    }
    fclose(f);
    return total;
}

static void *thread_fn(void *arg) {
    void *p = malloc(100);
    free(p);
    return arg;
}

static void check_thread(const char *when) {
    pthread_t th;
    int rc = pthread_create(&th, NULL, thread_fn, (void *)7);
    CHECK(rc == 0, "pthread_create failed %s: %s", when, strerror(rc));
    if (rc == 0) {
        void *r = NULL;
        pthread_join(th, &r);
        CHECK(r == (void *)7, "thread result %s", when);
    }
}

/* ------------------------------------------------------------ aligned */

#define NALIGNED 150000
static void *blocks[NALIGNED];

static void mode_aligned(void) {
    long base = maps_count();
    long fails = 0;
    for (long i = 0; i < NALIGNED; i++) {
        void *p = NULL;
        int rc = posix_memalign(&p, 8192, 64);
        if (rc != 0 || p == NULL) {
            fails++;
            blocks[i] = NULL;
            continue;
        }
        CHECK(((uintptr_t)p & 8191) == 0, "posix_memalign(8192) gave %p", p);
        memset(p, (int)(i & 0xff), 64);
        blocks[i] = p;
    }
    long after = maps_count();
    printf("aligned: %ld x posix_memalign(8192, 64): %ld failures; mappings %ld before, %ld after\n",
           (long)NALIGNED, fails, base, after);
    CHECK(fails == 0, "%ld of %d posix_memalign(8192, 64) failed", fails, NALIGNED);
    CHECK(after <= base + 64, "mappings grew from %ld to %ld (one per aligned block?)", base,
          after);
    check_thread("after 150,000 aligned blocks");
    void *big = malloc(1 << 20);
    CHECK(big != NULL, "malloc(1 MiB) failed after the aligned blocks");
    free(big);
    for (long i = 0; i < NALIGNED; i++) {
        if (blocks[i]) {
            unsigned char *b = blocks[i];
            CHECK(b[0] == (unsigned char)(i & 0xff) && b[63] == (unsigned char)(i & 0xff),
                  "aligned block %ld overwritten", i);
        }
        free(blocks[i]);
    }
    /* Every aligned entry point, alignments 8 KiB .. 64 KiB, sizes around pages. */
    static const size_t sizes[] = {1, 64, 4096, 4097, 20000, 65536, 100000, 200000};
    for (size_t a = 8192; a <= 65536; a *= 2) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            void *p[3] = {NULL, NULL, NULL};
            CHECK(posix_memalign(&p[0], a, n) == 0, "posix_memalign(%zu, %zu)", a, n);
            p[1] = aligned_alloc(a, (n + a - 1) / a * a);
            p[2] = memalign(a, n);
            for (int j = 0; j < 3; j++) {
                CHECK(p[j] != NULL && ((uintptr_t)p[j] & (a - 1)) == 0,
                      "entry %d alignment %zu size %zu gave %p", j, a, n, p[j]);
                if (!p[j]) continue;
                CHECK(malloc_usable_size(p[j]) >= n, "usable size %zu < %zu",
                      malloc_usable_size(p[j]), n);
                memset(p[j], 0x5a, n);
            }
            void *q = realloc(p[0], n + 5000);
            CHECK(q != NULL && ((unsigned char *)q)[n - 1] == 0x5a, "realloc of an aligned block");
            if (q) p[0] = q;
            for (int j = 0; j < 3; j++) free(p[j]);
        }
    }
    long end = maps_count();
    printf("aligned: mappings after freeing: %ld\n", end);
    CHECK(end <= base + 64, "mappings after freeing: %ld (start %ld)", end, base);
    check_thread("after freeing");
}

/* ------------------------------------------------------------ munmap */

#define NLARGE 64

static void mode_munmap(void) {
    /* Warm up: the allocator's own tables and a large block's registry exist. */
    void *w = malloc(3 << 20);
    free(w);
    malloc_trim(0);
    long base_maps = maps_count(), base_kib = vm_size_kib();

    refuse_munmap = 1;
    void *p[NLARGE];
    for (int i = 0; i < NLARGE; i++) {
        p[i] = malloc((size_t)(3 + i % 3) << 20);
        CHECK(p[i] != NULL, "malloc large %d", i);
        if (p[i]) memset(p[i], 1, 4096);
    }
    /* An over-aligned large block: its mapping is trimmed with munmap. */
    void *a = NULL;
    CHECK(posix_memalign(&a, 4 << 20, 5 << 20) == 0, "posix_memalign(4 MiB, 5 MiB)");
    for (int i = 0; i < NLARGE; i++) free(p[i]);
    free(a);
    malloc_trim(0);
    long refused = munmap_refused;
    long mid_kib = vm_size_kib();
    refuse_munmap = 0;

    /* Allowed again: the next large-block events and a trim unmap what was refused. */
    for (int i = 0; i < 4; i++) {
        void *q = malloc(6 << 20);
        free(q);
    }
    malloc_trim(0);
    long end_maps = maps_count(), end_kib = vm_size_kib();
    printf("munmap: %ld munmap calls refused; mappings %ld -> %ld, VmSize %ld KiB -> %ld KiB "
           "(while refused: %ld KiB)\n",
           refused, base_maps, end_maps, base_kib, end_kib, mid_kib);
    CHECK(refused > 0, "the allocator never called munmap while it was refused (shim not reached?)");
    CHECK(end_kib <= base_kib + 16 * 1024,
          "address space %ld KiB after, %ld KiB before: refused mappings were lost", end_kib,
          base_kib);
    CHECK(end_maps <= base_maps + 8, "mappings %ld after, %ld before", end_maps, base_maps);
}

/* ------------------------------------------------------------ hblks */

static void mode_hblks(void) {
    struct mallinfo2 m0 = mallinfo2();
    void *p[16];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 16; i++) {
            p[i] = malloc((size_t)(1 + i % 4) << 20);
            CHECK(p[i] != NULL, "malloc large");
        }
        struct mallinfo2 m = mallinfo2();
        CHECK(m.hblks == m0.hblks + 16, "round %d: hblks %zu with 16 live large blocks (start %zu)",
              round, m.hblks, m0.hblks);
        CHECK(m.hblkhd >= m0.hblkhd + (40u << 20), "round %d: hblkhd %zu", round, m.hblkhd);
        for (int i = 0; i < 16; i++) free(p[i]);
        m = mallinfo2();
        CHECK(m.hblks == m0.hblks && m.hblkhd == m0.hblkhd,
              "round %d: hblks %zu hblkhd %zu after freeing (start %zu, %zu)", round, m.hblks,
              m.hblkhd, m0.hblks, m0.hblkhd);
    }
    struct mallinfo2 m = mallinfo2();
    printf("hblks: start %zu/%zu, end %zu/%zu\n", m0.hblks, m0.hblkhd, m.hblks, m.hblkhd);
}

/* ------------------------------------------------------------ small5g */

#define SMALL_SIZE (256 * 1024)
#define NSMALL (18 * 1024) /* 4.5 GiB */
static void *small[NSMALL];

static void mode_small5g(void) {
    long base = maps_count();
    long fails = 0;
    for (long i = 0; i < NSMALL; i++) {
        small[i] = malloc(SMALL_SIZE);
        if (!small[i]) fails++;
        else *(volatile char *)small[i] = 1;
    }
    struct mallinfo2 m = mallinfo2();
    long after = maps_count();
    printf("small5g: %d x %d B (%.2f GiB): %ld failures; hblks %zu; mappings %ld -> %ld\n", NSMALL,
           SMALL_SIZE, (double)NSMALL * SMALL_SIZE / (1 << 30), fails, m.hblks, base, after);
    CHECK(fails == 0, "%ld small blocks failed", fails);
    CHECK(m.hblks == 0, "%zu small blocks became mappings of their own (arena exhausted)", m.hblks);
    CHECK(after <= base + 64, "mappings grew from %ld to %ld", base, after);
    for (long i = 0; i < NSMALL; i++) free(small[i]);
}

/* ------------------------------------------------------------ commit */

static void mode_commit(void) {
    void *keep[64];
    for (int i = 0; i < 64; i++) keep[i] = malloc((size_t)16 << (i % 14));
    void *a = NULL;
    CHECK(posix_memalign(&a, 16384, 1000) == 0, "posix_memalign");
    check_thread("commit");
    long kib = writable_private_kib();
    printf("commit: writable private mappings %ld KiB\n", kib);
    CHECK(kib > 0 && kib <= 64 * 1024,
          "writable private mappings %ld KiB: the arena is charged before it is used", kib);
    for (int i = 0; i < 64; i++) free(keep[i]);
    free(a);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "aligned")) mode_aligned();
    else if (!strcmp(mode, "munmap")) mode_munmap();
    else if (!strcmp(mode, "hblks")) mode_hblks();
    else if (!strcmp(mode, "small5g")) mode_small5g();
    else if (!strcmp(mode, "commit")) mode_commit();
    else {
        fprintf(stderr, "usage: mappings aligned|munmap|hblks|small5g|commit\n");
        return 2;
    }
    if (T_FAIL_GET()) {
        fprintf(stderr, "mappings %s: %ld failures\n", mode, (long)T_FAIL_GET());
        return 1;
    }
    printf("mappings %s: all checks passed\n", mode);
    return 0;
}
