/* broken_shim.c - a deliberately WRONG allocator, for the harness self-test.
 *
 * It forwards to glibc (through the __libc_* entry points) but breaks two
 * promises on purpose:
 *   - posix_memalign writes *memptr even when it fails;
 *   - malloc_usable_size claims 64 bytes more than the block really has.
 * preload_c.rs runs edge.c against it and asserts that edge FAILS and names
 * both bugs.  If that test passes, the edge checks are able to fail.
 * Never use this library for anything else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#include <dlfcn.h>
/* glibc's real malloc_usable_size (the next definition after ours) */
static size_t glibc_usable_size(void *p) {
    static size_t (*real)(void *);
    if (!real) real = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    return real(p);
}

void *malloc(size_t n) { return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }

int posix_memalign(void **memptr, size_t align, size_t n) {
    if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0 || align == 0) {
        *memptr = (void *)(uintptr_t)0x1; /* BUG: must not write on error */
        return EINVAL;
    }
    void *p = __libc_memalign(align, n);
    if (!p) {
        *memptr = (void *)(uintptr_t)0x1; /* BUG */
        return ENOMEM;
    }
    *memptr = p;
    return 0;
}

size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    return glibc_usable_size(p) + 64; /* BUG: lies */
}
