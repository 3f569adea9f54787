/*
 * hz3.h - C API of the hz3 memory allocator.
 *
 * hz3 ships as one shared object per lane (libhz3_fast.so, libhz3_scale.so,
 * libhz3_mem_mstress.so, libhz3_mem_large.so). Each exports the standard
 * allocation entry points under their standard names, so
 *
 *     LD_PRELOAD=/path/to/libhz3_fast.so ./program
 *
 * replaces the C library's allocator without recompiling anything. This header
 * is needed only by programs that link against a lane directly, or that want
 * the extensions (sized free, statistics).
 *
 * Every declaration of a standard function here matches the C library's own,
 * so this header can be included before or after <stdlib.h> and <malloc.h>,
 * from C (C99 or later) and C++ (C++11 or later).
 *
 * Optional symbols: define HZ3_WEAK_EXTENSIONS before including this header
 * to declare the hz3-only functions (hz3_*) as weak references. A program can
 * then test `if (hz3_stats_get != NULL)` to learn whether hz3 is loaded (for
 * instance through LD_PRELOAD) without a link-time dependency on it.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef HZ3_H
#define HZ3_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h> /* struct mallinfo2 */
#define HZ3_HAVE_LIBC_MALLINFO2 1
#endif

#define HZ3_VERSION_MAJOR 0
#define HZ3_VERSION_MINOR 1
#define HZ3_VERSION_PATCH 0

/* Exception specification matching glibc's __THROW, so redeclarations agree. */
#if defined(__cplusplus)
#if __cplusplus >= 201103L
#define HZ3_NOTHROW noexcept(true)
#else
#define HZ3_NOTHROW throw()
#endif
#elif defined(__GNUC__)
#define HZ3_NOTHROW __attribute__((__nothrow__))
#else
#define HZ3_NOTHROW
#endif

#if defined(__GNUC__)
#define HZ3_MALLOC_ATTR __attribute__((__malloc__))
#define HZ3_ALLOC_SIZE(n) __attribute__((__alloc_size__(n)))
#define HZ3_ALLOC_SIZE2(n, m) __attribute__((__alloc_size__(n, m)))
#define HZ3_WARN_UNUSED __attribute__((__warn_unused_result__))
#else
#define HZ3_MALLOC_ATTR
#define HZ3_ALLOC_SIZE(n)
#define HZ3_ALLOC_SIZE2(n, m)
#define HZ3_WARN_UNUSED
#endif

#if defined(HZ3_WEAK_EXTENSIONS) && defined(__GNUC__)
#define HZ3_EXT __attribute__((__weak__))
#else
#define HZ3_EXT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Standard allocation entry points (ISO C, POSIX, glibc).                  */
/* ------------------------------------------------------------------------ */

void *malloc(size_t size) HZ3_NOTHROW HZ3_MALLOC_ATTR HZ3_ALLOC_SIZE(1) HZ3_WARN_UNUSED;
void *calloc(size_t count, size_t size) HZ3_NOTHROW HZ3_MALLOC_ATTR HZ3_ALLOC_SIZE2(1, 2)
    HZ3_WARN_UNUSED;
void *realloc(void *ptr, size_t size) HZ3_NOTHROW HZ3_ALLOC_SIZE(2) HZ3_WARN_UNUSED;
void free(void *ptr) HZ3_NOTHROW;

/* C11: size must be a multiple of alignment; alignment a power of two. */
void *aligned_alloc(size_t alignment, size_t size) HZ3_NOTHROW HZ3_MALLOC_ATTR
    HZ3_ALLOC_SIZE(2) HZ3_WARN_UNUSED;
/* POSIX: returns 0, EINVAL or ENOMEM; *out is untouched on failure. */
int posix_memalign(void **out, size_t alignment, size_t size) HZ3_NOTHROW;

/* Obsolete but still exported, since programs under LD_PRELOAD call them. */
void *memalign(size_t alignment, size_t size) HZ3_NOTHROW HZ3_MALLOC_ATTR HZ3_ALLOC_SIZE(2);
void *valloc(size_t size) HZ3_NOTHROW HZ3_MALLOC_ATTR HZ3_ALLOC_SIZE(1);
void *pvalloc(size_t size) HZ3_NOTHROW HZ3_MALLOC_ATTR;
/* glibc 2.26+ / POSIX 2024: realloc(ptr, count * size) with overflow check. */
void *reallocarray(void *ptr, size_t count, size_t size) HZ3_NOTHROW HZ3_ALLOC_SIZE2(2, 3);

/* Usable size of a live block: at least the size that was requested. */
size_t malloc_usable_size(void *ptr) HZ3_NOTHROW;

/*
 * C23 sized deallocation. `size` must be the size passed to the allocating
 * call (for calloc: count * size); `alignment` the alignment passed to
 * aligned_alloc. A wrong size is undefined behaviour. free_sized(NULL, n) and
 * free_aligned_sized(NULL, a, n) do nothing.
 */
void free_sized(void *ptr, size_t size) HZ3_NOTHROW;
void free_aligned_sized(void *ptr, size_t alignment, size_t size) HZ3_NOTHROW;

/*
 * glibc's mallinfo2, filled by hz3 as:
 *   arena     bytes of arena pages in spans (small and medium classes)
 *   ordblks   live spans
 *   hblks     large mappings made, plus those served from the large cache
 *   hblkhd    bytes of live large blocks
 *   uordblks  bytes in use (span bytes less free objects in spans, plus large
 *             blocks; objects cached by threads count as in use)
 *   fordblks  free bytes held (free objects in spans, cached large mappings)
 * and 0 in the other fields.
 */
#ifndef HZ3_HAVE_LIBC_MALLINFO2
/* Same layout as glibc's, for C libraries that do not define it. */
struct mallinfo2 {
    size_t arena;
    size_t ordblks;
    size_t smblks;
    size_t hblks;
    size_t hblkhd;
    size_t usmblks;
    size_t fsmblks;
    size_t uordblks;
    size_t fordblks;
    size_t keepcost;
};
#endif
struct mallinfo2 mallinfo2(void) HZ3_NOTHROW;

/* glibc extensions hz3 also exports (malloc_trim hands cached memory back
 * to the OS; mallopt acts on M_TRIM_THRESHOLD (free dirty bytes an owner
 * keeps) and M_ARENA_MAX (owners new threads use), accepts and ignores
 * glibc's other parameters (returns 1, as glibc), and returns 0 for an
 * invalid value or an unknown parameter; malloc_stats prints hz3's
 * statistics to stderr). */
int malloc_trim(size_t pad) HZ3_NOTHROW;
int mallopt(int param, int value) HZ3_NOTHROW;
void malloc_stats(void) HZ3_NOTHROW;

/* ------------------------------------------------------------------------ */
/* hz3 extensions.                                                          */
/*                                                                          */
/* struct hz3_stats mirrors hz3::Stats field for field (repr(C), all u64);   */
/* check-header.sh compares sizeof with hz3_stats_get(NULL) at run time.   */
/* ------------------------------------------------------------------------ */

/* Number of size-class slots in struct hz3_stats (slot 0 is unused). */
#define HZ3_NCLS 129

/* Counters of one size class, summed over owners. */
struct hz3_class_stats {
    uint64_t size;          /* object size of the class in bytes */
    uint64_t spans;         /* live spans of the class */
    uint64_t free_objects;  /* free objects in those spans (thread caches not counted) */
    uint64_t refills;       /* thread-cache refills from the central caches */
    uint64_t flushes;       /* objects flushed to central caches */
};

/* A snapshot of the allocator's counters (gauges are not atomic with each other). */
struct hz3_stats {
    uint64_t arena_reserved;      /* bytes of arena address space reserved */
    uint64_t segments_mapped;     /* 2 MiB segments ever taken from the arena */
    uint64_t span_bytes;          /* bytes of arena pages in live spans */
    uint64_t span_bytes_peak;     /* the most span_bytes ever reached */
    uint64_t bytes_purged;        /* bytes handed back to the OS (madvise) so far */
    uint64_t dirty_free_bytes;    /* free pages held by the page heaps, maybe resident */
    uint64_t spans_released;      /* spans released to the page heaps so far */
    uint64_t large_live_bytes;    /* bytes of live large blocks */
    uint64_t large_cached_bytes;  /* bytes of freed large mappings kept for reuse */
    uint64_t large_maps;          /* large mappings made */
    uint64_t large_cache_hits;    /* large allocations served from the cache */
    uint64_t large_cache_decayed; /* cached large mappings unmapped after the decay period */
    uint64_t threads_started;     /* thread caches created */
    uint64_t threads_exited;      /* thread caches handed back */
    uint64_t live_thread_caches;  /* thread caches alive now */
    uint64_t owners;              /* owners (heaps) of this lane */
    uint64_t transfer_refills;    /* refills served whole from a central transfer list */
    struct hz3_class_stats classes[HZ3_NCLS]; /* index = class id; 0 unused; a lane with fewer classes leaves the rest zero */
};

/*
 * Copies the statistics into *out (if out is not NULL) and returns the size
 * of the library's struct. Call it with NULL first, or use hz3_stats_read(),
 * when the library may be of another version than this header.
 */
HZ3_EXT size_t hz3_stats_get(struct hz3_stats *out) HZ3_NOTHROW;
/* The same statistics, plus the calling thread's cache, as one JSON object:
 * {"lane":"fast","span_bytes":...,"thread":{"has_cache":1,"owner":...,
 * "cached_bytes":...,"slow_path_events":...},"classes":[{"size":...},...]}.
 * snprintf's contract: writes at most len bytes, NUL-terminated when len > 0,
 * and returns the length of the whole text (retry with a bigger buffer when
 * the result is >= len). buf may be NULL when len is 0. */
HZ3_EXT size_t hz3_stats_json(char *buf, size_t len) HZ3_NOTHROW;
/* Prints the lane and its configuration to stderr (as HZ3_PRINT_CONFIG=1 does). */
HZ3_EXT void hz3_print_config(void) HZ3_NOTHROW;

/* 0 and *out filled if the loaded hz3 has this header's layout; -1 otherwise. */
static inline int hz3_stats_read(struct hz3_stats *out) {
#ifdef HZ3_WEAK_EXTENSIONS
    if (!hz3_stats_get) return -1;
#endif
    if (hz3_stats_get(NULL) != sizeof(struct hz3_stats)) return -1;
    (void)hz3_stats_get(out);
    return 0;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HZ3_H */
