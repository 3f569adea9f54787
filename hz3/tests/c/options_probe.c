// Run-time options probe (issue 18 item 5): frees memory in a way each option
// changes, then prints hz3's counters (from hz3_stats_json) on stdout as
// `bytes_purged=N dirty_free_bytes=N large_cached_bytes=N`. The test driver
// (hz3/tests/options.rs) sets HZ3_* variables and compares runs.
//
//   options_probe pages    free 96 MiB of 128 KiB blocks (page-heap purge bound)
//   options_probe decay    the same, then three 30 ms pauses each ended by a small
//                          span free (the decay epochs pass)
//   options_probe large    free 16 blocks of 4 MiB (large-mapping cache)
//   options_probe mallopt  mallopt(M_TRIM_THRESHOLD, 1 MiB) and M_ARENA_MAX=1
//                          first (checking the return values), then `pages`
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern size_t hz3_stats_json(char *buf, size_t len) __attribute__((weak));
extern void hz3_print_config(void) __attribute__((weak));

static char json[1 << 16];

static unsigned long long field(const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(json, key);
    if (!p) {
        fprintf(stderr, "options_probe: no %s in the stats\n", name);
        exit(2);
    }
    return strtoull(p + strlen(key), NULL, 10);
}

static void churn(size_t size, size_t n) {
    static void *blocks[4096];
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(size);
        if (!blocks[i]) exit(3);
        memset(blocks[i], 1, size);
    }
    for (size_t i = 0; i < n; i++) free(blocks[i]);
}

static void pause_ms(long ms) {
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "pages";
    if (!hz3_stats_json) {
        fprintf(stderr, "options_probe: hz3 is not loaded\n");
        return 2;
    }
    if (!strcmp(mode, "mallopt")) {
        int a = mallopt(M_TRIM_THRESHOLD, 1 << 20);
        int b = mallopt(M_ARENA_MAX, 1);
        int c = mallopt(M_MMAP_THRESHOLD, 1 << 20);
        int d = mallopt(12345, 1);
        int e = mallopt(M_TRIM_THRESHOLD, -1);
        printf("mallopt trim=%d arena_max=%d mmap_threshold=%d unknown=%d trim_negative=%d\n",
               a, b, c, d, e);
        if (hz3_print_config) hz3_print_config();
        mode = "pages";
    }
    if (!strcmp(mode, "pages")) {
        churn(128 << 10, 768);
    } else if (!strcmp(mode, "decay")) {
        churn(128 << 10, 768);
        /* Three epoch ends after the burst: a page goes back once it stayed
         * free through two whole decay epochs (page_heap::decay_locked), and
         * without the purge thread only frees end an epoch. */
        for (int i = 0; i < 3; i++) {
            pause_ms(30);
            churn(128 << 10, 64);
        }
    } else if (!strcmp(mode, "large")) {
        churn(4 << 20, 16);
    } else {
        fprintf(stderr, "options_probe: unknown mode %s\n", mode);
        return 2;
    }
    if (hz3_stats_json(json, sizeof json) >= sizeof json) return 4;
    printf("bytes_purged=%llu dirty_free_bytes=%llu large_cached_bytes=%llu\n",
           field("bytes_purged"), field("dirty_free_bytes"), field("large_cached_bytes"));
    return 0;
}
