// cxx.cpp - C++ operator new/delete family and std containers under LD_PRELOAD.
//
// Build: c++ -std=c++17 -O1 -fno-builtin -pthread -I. cxx.cpp -o cxx -ldl
// Run:   LD_PRELOAD=/path/libhz3_fast.so ./cxx --expect-lib libhz3_fast.so --require-operators
//
// Flags
//   --expect-lib NAME     NAME must be mapped and provide malloc/free/...
//   --require-operators   every operator new/delete symbol must come from NAME
//   --threads N           container churn threads (default 4)
//   --rounds N            container churn rounds per thread (default 3)
#include "common.h"

#include <malloc.h>
#include <pthread.h>

#include <cstddef>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

static const char *opt_lib = nullptr;
static bool opt_require_ops = false;
static int opt_threads = 4;
static int opt_rounds = 3;

static const size_t KiB = 1024, MiB = 1024 * 1024;

// Every mangled name of the replaceable allocation functions (x86-64,
// size_t = unsigned long).
static const char *operator_symbols[] = {
    "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

static void touch(void *p, size_t n, unsigned char v) {
    if (n <= 4 * MiB) {
        memset(p, v, n);
    } else {
        unsigned char *c = static_cast<unsigned char *>(p);
        for (size_t i = 0; i < n; i += 4096) c[i] = v;
        c[n - 1] = v;
    }
}

static void test_plain() {
    for (size_t n = 0; n <= 600 * KiB; n = n ? n * 2 + 3 : 1) {
        void *p = t_escape(::operator new(n));
        CHECK(p != nullptr, "operator new(%zu) returned null", n);
        CHECK(reinterpret_cast<uintptr_t>(p) % (n >= 16 ? 16 : 1) == 0, "operator new(%zu) = %p misaligned", n, p);
        touch(p, n, 1);
        CHECK(malloc_usable_size(p) >= n, "operator new(%zu): usable %zu", n, malloc_usable_size(p));
        if (n & 1) ::operator delete(p);
        else ::operator delete(p, n);  // sized

        void *a = t_escape(::operator new[](n));
        touch(a, n, 2);
        if (n & 2) ::operator delete[](a);
        else ::operator delete[](a, n);

        void *q = t_escape(::operator new(n, std::nothrow));
        CHECK(q != nullptr, "operator new(%zu, nothrow) returned null", n);
        touch(q, n, 3);
        ::operator delete(q, std::nothrow);
        void *qa = t_escape(::operator new[](n, std::nothrow));
        CHECK(qa != nullptr, "operator new[](%zu, nothrow) returned null", n);
        ::operator delete[](qa, std::nothrow);
    }
    // new/delete interoperate with malloc/free the way glibc + libstdc++ do
    void *m = t_escape(::operator new(100));
    touch(m, 100, 9);
    ::operator delete(m);
    // zero-size new returns unique pointers
    void *z1 = t_escape(::operator new(0)), *z2 = t_escape(::operator new(0));
    CHECK(z1 && z2 && z1 != z2, "operator new(0) pointers not unique: %p %p", z1, z2);
    ::operator delete(z1);
    ::operator delete(z2, size_t(0));
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
}

static void test_aligned() {
    for (size_t a = 1; a <= 64 * KiB * 4; a *= 2) {  // up to 256 KiB, past the required 64 KiB
        std::align_val_t al{a};
        const size_t sizes[] = {1, a / 2 + 1, a, a + 1, 3 * a, 100000};
        void *ps[6];
        for (int i = 0; i < 6; i++) {
            size_t n = sizes[i];
            void *p = nullptr;
            switch (i % 4) {
            case 0: p = ::operator new(n, al); break;
            case 1: p = ::operator new[](n, al); break;
            case 2: p = ::operator new(n, al, std::nothrow); break;
            default: p = ::operator new[](n, al, std::nothrow); break;
            }
            t_escape(p);
            ps[i] = p;
            CHECK(p != nullptr, "aligned new(%zu, align %zu) returned null", n, a);
            if (!p) continue;
            CHECK(reinterpret_cast<uintptr_t>(p) % a == 0, "aligned new(%zu, align %zu) = %p misaligned", n, a, p);
            touch(p, n, static_cast<unsigned char>(i + 1));
        }
        for (int i = 0; i < 6; i++) {
            if (!ps[i]) continue;
            unsigned char *c = static_cast<unsigned char *>(ps[i]);
            CHECK(c[0] == i + 1 && c[sizes[i] - 1] == i + 1, "aligned new block %d (align %zu) clobbered", i, a);
            switch (i % 4) {
            case 0: (i & 1) ? ::operator delete(ps[i], al) : ::operator delete(ps[i], sizes[i], al); break;
            case 1: (i & 2) ? ::operator delete[](ps[i], al) : ::operator delete[](ps[i], sizes[i], al); break;
            case 2: ::operator delete(ps[i], al, std::nothrow); break;
            default: ::operator delete[](ps[i], al, std::nothrow); break;
            }
        }
    }
    // over-aligned types through new-expressions
    struct alignas(64) A64 { unsigned char b[64]; };
    struct alignas(4096) A4K { unsigned char b[100]; };
    for (int i = 0; i < 200; i++) {
        A64 *x = new A64[i + 1];
        CHECK(reinterpret_cast<uintptr_t>(x) % 64 == 0, "new A64[%d] misaligned", i + 1);
        memset(x, 1, sizeof(A64) * (i + 1));
        A4K *y = new A4K;
        CHECK(reinterpret_cast<uintptr_t>(y) % 4096 == 0, "new A4K misaligned: %p", (void *)y);
        memset(y, 2, sizeof *y);
        delete[] x;
        delete y;
    }
}

static int handler_calls = 0;
static void counting_handler() {
    handler_calls++;
    std::set_new_handler(nullptr);  // next failure throws
}

static void test_huge() {
    const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4095, static_cast<size_t>(PTRDIFF_MAX) + 1, size_t(1) << 62};
    for (size_t h : huge) {
        size_t n = t_opaque(h);
        bool threw = false;
        try {
            void *p = t_escape(::operator new(n));
            CHECK(false, "operator new(%#zx) returned %p instead of throwing", n, p);
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        CHECK(threw, "operator new(%#zx) did not throw std::bad_alloc", n);
        threw = false;
        try {
            void *p = t_escape(::operator new[](n));
            CHECK(false, "operator new[](%#zx) returned %p instead of throwing", n, p);
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        CHECK(threw, "operator new[](%#zx) did not throw std::bad_alloc", n);
        // libstdc++ 12's own aligned operator new rounds the size up with
        // wrap-around, so sizes next to SIZE_MAX are checked only when the
        // library under test provides the aligned operators itself.
        bool aligned_ok = opt_require_ops || n <= SIZE_MAX - 64 * KiB;
        threw = !aligned_ok;
        if (aligned_ok) try {
            void *p = t_escape(::operator new(n, std::align_val_t{64}));
            CHECK(false, "aligned operator new(%#zx) returned %p instead of throwing", n, p);
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        CHECK(threw, "aligned operator new(%#zx) did not throw std::bad_alloc", n);

        void *p = t_escape(::operator new(n, std::nothrow));
        CHECK(p == nullptr, "operator new(%#zx, nothrow) = %p, want nullptr", n, p);
        p = t_escape(::operator new[](n, std::nothrow));
        CHECK(p == nullptr, "operator new[](%#zx, nothrow) = %p, want nullptr", n, p);
        p = aligned_ok ? t_escape(::operator new(n, std::align_val_t{4096}, std::nothrow)) : nullptr;
        CHECK(p == nullptr, "aligned operator new(%#zx, nothrow) = %p, want nullptr", n, p);
    }
    // new-expression of an array whose size overflows
    {
        bool threw = false;
        size_t count = t_opaque(SIZE_MAX / 8);
        try {
            auto *arr = new std::string[count];
            CHECK(false, "new std::string[%zu] returned %p", count, (void *)arr);
        } catch (const std::bad_alloc &) {  // bad_array_new_length derives from bad_alloc
            threw = true;
        }
        CHECK(threw, "new std::string[SIZE_MAX/8] did not throw");
    }
    // the standard says operator new calls the new_handler before giving up
    handler_calls = 0;
    std::set_new_handler(counting_handler);
    bool threw = false;
    try {
        void *p = t_escape(::operator new(t_opaque(SIZE_MAX - 100)));
        CHECK(false, "operator new(huge) with handler returned %p", p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    std::set_new_handler(nullptr);
    CHECK(threw, "operator new(huge) with a new_handler did not throw in the end");
    CHECK(handler_calls == 1, "operator new(huge) called the new_handler %d times, want 1", handler_calls);
}

// Containers: deterministic work whose result is checked against a
// recomputation with different containers.
static uint64_t churn(uint64_t seed) {
    t_rng r{seed};
    std::map<int, std::string> m;
    std::unordered_map<std::string, std::vector<int>> um;
    std::deque<std::unique_ptr<std::vector<uint64_t>>> dq;
    std::list<std::shared_ptr<std::string>> ls;
    std::set<uint64_t> st;
    uint64_t acc = 0;
    for (int i = 0; i < 30000; i++) {
        int k = static_cast<int>(t_below(&r, 5000));
        std::string s(static_cast<size_t>(t_below(&r, 200)), static_cast<char>('a' + k % 26));
        s += std::to_string(k);
        m[k] = s;
        um[s].push_back(i);
        if (um.size() > 3000) um.erase(um.begin());
        if (t_below(&r, 4) == 0) {
            auto v = std::make_unique<std::vector<uint64_t>>(static_cast<size_t>(t_below(&r, 3000)), uint64_t(i));
            dq.push_back(std::move(v));
            if (dq.size() > 200) dq.pop_front();
        }
        ls.push_back(std::make_shared<std::string>(s));
        if (ls.size() > 500) ls.pop_front();
        st.insert(t_next(&r) % 100000);
        if (st.size() > 4000) st.erase(st.begin());
        if (i % 1000 == 0) {
            std::vector<std::string> big;
            for (auto &kv : m) big.push_back(kv.second);
            big.shrink_to_fit();
            acc ^= big.size();
        }
    }
    for (auto &kv : m) acc = acc * 31 + kv.first + kv.second.size();
    for (auto &v : dq) acc = acc * 7 + v->size();
    for (auto &p : ls) acc = acc * 3 + p->size();
    for (auto v : st) acc += v;
    return acc;
}

static uint64_t churn_results[1024];
static void *churn_thread(void *arg) {
    size_t idx = reinterpret_cast<uintptr_t>(arg);
    uint64_t seed = idx % 2 + 1;
    uint64_t first = churn(seed);
    churn_results[idx % 1024] = first;
    for (int i = 1; i < opt_rounds; i++) {
        uint64_t again = churn(seed);
        CHECK(again == first, "container churn not reproducible (seed %llu): %llx vs %llx",
              (unsigned long long)seed, (unsigned long long)first, (unsigned long long)again);
    }
    return nullptr;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--expect-lib" && i + 1 < argc) opt_lib = argv[++i];
        else if (a == "--require-operators") opt_require_ops = true;
        else if (a == "--threads" && i + 1 < argc) opt_threads = atoi(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc) opt_rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "cxx: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if (opt_require_ops && !opt_lib) {
        fprintf(stderr, "cxx: --require-operators needs --expect-lib\n");
        return 2;
    }
    t_arm_alarm("cxx", 240);
    t_check_loaded(opt_lib);
    if (opt_require_ops)
        for (const char *s : operator_symbols)
            CHECK(t_symbol_from(s, opt_lib, 0), "%s is not provided by %s", s, opt_lib);

    fprintf(stderr, "cxx: plain\n");
    test_plain();
    fprintf(stderr, "cxx: aligned\n");
    test_aligned();
    fprintf(stderr, "cxx: huge\n");
    test_huge();
    fprintf(stderr, "cxx: containers in %d threads\n", opt_threads);
    std::vector<pthread_t> th(static_cast<size_t>(opt_threads > 0 ? (opt_threads > 1024 ? 1024 : opt_threads) : 0));
    for (size_t t = 0; t < th.size(); t++)
        pthread_create(&th[t], nullptr, churn_thread, reinterpret_cast<void *>(uintptr_t(t)));
    for (auto &t : th) pthread_join(t, nullptr);
    if (th.empty()) churn_thread(reinterpret_cast<void *>(uintptr_t(0)));
    // threads with the same seed must agree too
    for (size_t t = 2; t < th.size(); t++)
        CHECK(churn_results[t] == churn_results[t % 2], "container churn differs between threads %zu and %zu", t, t % 2);

    t_check_loaded(opt_lib);
    long f = T_FAIL_GET();
    if (f) {
        fprintf(stderr, "cxx: %ld check(s) FAILED\n", f);
        return 1;
    }
    printf("cxx: all checks passed\n");
    return 0;
}
