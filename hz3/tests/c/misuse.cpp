// Misuse suite (issue 17 item 4): one heap misuse per process, selected by argv.
//   misuse list        prints "<index> <category> <name>" for every case
//   misuse <index>     runs one case
// After the misuse the program allocates blocks of the same size and checks
// them: a duplicate, misaligned or overlapping block exits 3 ("survived,
// corrupted"); none exits 0 ("survived"). An allocator that catches the misuse
// aborts (SIGABRT) before handing out such a block.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <new>
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wpragmas"

static const size_t SIZES[] = {16, 48, 200, 1000, 6000};
static const int NSIZES = 5;
static char global_buf[256] __attribute__((aligned(16)));

struct Kind { const char *cat; const char *name; };
static const Kind KINDS[] = {
    {"double_free", "free_twice"},
    {"double_free", "free_twice_interleaved"},
    {"double_free", "free_twice_after_reuse_other"},
    {"double_free", "realloc_then_free_old"},
    {"invalid_free", "free_interior_p8"},
    {"invalid_free", "free_p_plus_1"},
    {"invalid_free", "free_stack"},
    {"invalid_free", "free_global"},
    {"use_after_free", "overwrite_link_garbage"},
    {"use_after_free", "overwrite_link_other_block"},
    {"use_after_free", "realloc_freed"},
    {"overflow", "overflow_into_free_next"},
    {"underflow", "underflow_before_block_then_free"},
    {"mismatch", "sized_delete_wrong_size"},
    {"mismatch", "new_array_delete_scalar_interior"},
    {"mismatch", "delete_interior_of_new"},
};
static const int NKINDS = sizeof(KINDS) / sizeof(KINDS[0]);

static void *volatile sink;

static int check_after(size_t sz) {
    enum { N = 96 };
    unsigned char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = (unsigned char *)malloc(sz);
        if (!b[i]) return 0;
        if (((uintptr_t)b[i] & 15) != 0) return 3;
        if ((unsigned char *)b[i] >= (unsigned char *)global_buf &&
            (unsigned char *)b[i] < (unsigned char *)global_buf + sizeof global_buf)
            return 3;
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            uintptr_t a = (uintptr_t)b[i], c = (uintptr_t)b[j];
            if ((a < c ? c - a : a - c) < sz) return 3;
        }
    for (int i = 0; i < N; i++) memset(b[i], i, sz);
    for (int i = 0; i < N; i++) free(b[i]);
    return 0;
}

static int run_case(int k, size_t sz) {
    const char *name = KINDS[k].name;
    unsigned char *p = (unsigned char *)malloc(sz);
    unsigned char *q = (unsigned char *)malloc(sz);
    memset(p, 1, sz);
    memset(q, 2, sz);
    if (!strcmp(name, "free_twice")) {
        free(p); free(p);
    } else if (!strcmp(name, "free_twice_interleaved")) {
        free(p); free(q); free(p); q = nullptr;
    } else if (!strcmp(name, "free_twice_after_reuse_other")) {
        free(p); sink = malloc(sz * 2 + 64); free(p);
    } else if (!strcmp(name, "realloc_then_free_old")) {
        unsigned char *r = (unsigned char *)realloc(p, sz * 8 + 4096);
        sink = r;
        if (r != p) free(p); else { free(r); free(r); }
    } else if (!strcmp(name, "free_interior_p8")) {
        free(p + 16 * (sz >= 64 ? 2 : 0) + 8);
    } else if (!strcmp(name, "free_p_plus_1")) {
        free(p + 1);
    } else if (!strcmp(name, "free_stack")) {
        alignas(16) unsigned char st[64];
        sink = st;
        free((void *)sink);
    } else if (!strcmp(name, "free_global")) {
        free(global_buf + (sz % 64 & ~15));
    } else if (!strcmp(name, "overwrite_link_garbage")) {
        free(p);
        memset(p, 0x41, sz < 16 ? sz : 16);
    } else if (!strcmp(name, "overwrite_link_other_block")) {
        free(p);
        *(void **)p = (void *)(global_buf + 16);
    } else if (!strcmp(name, "realloc_freed")) {
        free(p);
        sink = realloc(p, sz + 8);
    } else if (!strcmp(name, "overflow_into_free_next")) {
        free(q);
        unsigned char *lo = p < q ? p : q;
        if (lo == p) memset(p + sz, 0x42, 16);
        else memset(p - 16, 0x42, 16);
        q = nullptr;
    } else if (!strcmp(name, "underflow_before_block_then_free")) {
        free(q);
        memset(p - 16, 0x43, 16);
        q = nullptr;
    } else if (!strcmp(name, "sized_delete_wrong_size")) {
        ::operator delete(p, sz * 64 + 100000);
        p = nullptr;
    } else if (!strcmp(name, "new_array_delete_scalar_interior")) {
        char *a = new char[sz];
        ::operator delete(a + 24);
    } else if (!strcmp(name, "delete_interior_of_new")) {
        char *a = (char *)::operator new(sz);
        ::operator delete(a + 40);
    }
    (void)q;
    return check_after(sz);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: misuse list|<index>\n"); return 2; }
    if (!strcmp(argv[1], "list")) {
        for (int k = 0; k < NKINDS; k++)
            for (int s = 0; s < NSIZES; s++)
                printf("%d %s %s/%zu\n", k * NSIZES + s, KINDS[k].cat, KINDS[k].name, SIZES[s]);
        return 0;
    }
    int i = atoi(argv[1]);
    if (i < 0 || i >= NKINDS * NSIZES) return 2;
    return run_case(i / NSIZES, SIZES[i % NSIZES]);
}
