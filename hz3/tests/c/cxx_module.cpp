// A C++ module loaded with dlopen into a C host (c/cxx_host.c; issue 17 item 2),
// the way a Python extension, a JNI library or a Lua module is. libstdc++ comes
// in with this module, after the allocator was loaded and bound.
//
// cxx_module_run() makes operator new fail (a request no allocator can serve)
// and checks, for new, new[] and aligned new, that the new-handler is called
// (it removes itself after 2 calls) and that std::bad_alloc is thrown and can
// be caught here; nothrow new returns nullptr. Returns the number of failures.
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <new>

static int handler_calls;

static void handler() {
    if (++handler_calls >= 2) std::set_new_handler(nullptr);
}

template <class F>
static int expect_bad_alloc(const char *what, F f) {
    handler_calls = 0;
    std::set_new_handler(handler);
    bool caught = false;
    try {
        f();
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    std::set_new_handler(nullptr);
    int fails = 0;
    if (!caught) {
        fprintf(stderr, "FAIL %s: no std::bad_alloc\n", what);
        fails++;
    }
    if (handler_calls != 2) {
        fprintf(stderr, "FAIL %s: new-handler called %d times, expected 2\n", what, handler_calls);
        fails++;
    }
    return fails;
}

extern "C" int cxx_module_run(void) {
    volatile size_t huge = SIZE_MAX / 2;
    int fails = 0;
    fails += expect_bad_alloc("operator new", [&] { ::operator delete(::operator new(huge)); });
    fails += expect_bad_alloc("operator new[]", [&] { ::operator delete[](::operator new[](huge)); });
    fails += expect_bad_alloc("aligned operator new", [&] {
        ::operator delete(::operator new(huge, std::align_val_t(64)), std::align_val_t(64));
    });
    void *p = ::operator new(huge, std::nothrow);
    if (p) {
        fprintf(stderr, "FAIL nothrow operator new: not nullptr\n");
        fails++;
    }
    // And a normal allocation still works.
    int *q = new int[1000];
    q[999] = 1;
    delete[] q;
    return fails;
}
