// A library with global-dynamic TLS (the model of an ordinary -fPIC library),
// for late_tls.c: dlopened after the program started, many such modules grow
// every thread's DTV, which glibc does with malloc inside __tls_get_addr.
__attribute__((tls_model("global-dynamic"))) __thread long mod_tls[64];

long *mod_touch(long v) {
    mod_tls[0] += v;
    mod_tls[63] = v;
    return mod_tls;
}
