// A C host that loads a C++ module with dlopen (issue 17 item 2):
//
//   cxx_host /path/to/cxx_module.so
//
// The host itself has no libstdc++; the module brings it in (RTLD_LOCAL, as
// Python does for extensions). The module's failing operator new must call
// the new-handler and throw std::bad_alloc, not abort. Prints
// "cxx_host: ok" and exits 0 when the module reports no failure.
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: cxx_host MODULE.so\n");
        return 2;
    }
    if (dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD)) {
        fprintf(stderr, "FAIL: libstdc++ is already loaded in the C host; the test would prove nothing\n");
        return 1;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "FAIL: dlopen(%s): %s\n", argv[1], dlerror());
        return 1;
    }
    int (*run)(void) = (int (*)(void))dlsym(h, "cxx_module_run");
    if (!run) {
        fprintf(stderr, "FAIL: no cxx_module_run in %s\n", argv[1]);
        return 1;
    }
    int fails = run();
    if (fails) {
        fprintf(stderr, "FAIL: %d check(s) failed in the module\n", fails);
        return 1;
    }
    puts("cxx_host: ok");
    return 0;
}
