// A library that takes SIZE bytes of static TLS (initial-exec), for
// dlopen_host.c: dlopened one after another, such libraries use up glibc's
// static TLS surplus, as a host that dlopens many modules does.
#ifndef SIZE
#define SIZE 16
#endif

__attribute__((tls_model("initial-exec"), aligned(16))) __thread char fill_tls[SIZE];

char *fill_touch(void) {
    fill_tls[0] = 1;
    return fill_tls;
}
