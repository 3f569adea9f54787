// fork with pthread_atfork handlers registered before the first malloc
// (issue 17 item 1):
//
//   atfork_early prepare|child|both
//
// The program registers its handlers before any allocation, then allocates
// (a small and a 1 MiB block, which takes the large-block lock) in the prepare
// handler, the child handler, or both, and forks 20 times while a second
// thread allocates. hz3's own handlers must wrap these: if they were
// registered later (lazily, at the first allocation), hz3's prepare runs
// first and the program's prepare deadlocks on hz3's locks, and the program's
// child handler runs while they are still held. Every fork must finish; the
// parent waits at most 10 s per child and alarm() ends a hung parent.
// Prints "atfork_early: ok".
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int in_prepare, in_child;
static atomic_int stop;

static void allocate(void) {
    char *volatile a = malloc(40);
    char *volatile b = malloc(1 << 20);
    if (!a || !b) _exit(3);
    a[0] = 1;
    b[(1 << 20) - 1] = 1;
    free(b);
    free(a);
}

static void prepare(void) {
    if (in_prepare) allocate();
}
static void child(void) {
    if (in_child) allocate();
}

static void *worker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        void *v[16];
        for (int i = 0; i < 16; i++) v[i] = malloc(16 + 64 * i + (i == 7 ? (1 << 20) : 0));
        for (int i = 0; i < 16; i++) free(v[i]);
    }
    return NULL;
}

/* Waits for `pid` at most 10 s; kills it then. Returns its wait status, -1 on a hang. */
static int wait_child(pid_t pid) {
    for (int i = 0; i < 1000; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "both";
    in_prepare = !strcmp(mode, "prepare") || !strcmp(mode, "both");
    in_child = !strcmp(mode, "child") || !strcmp(mode, "both");
    alarm(30);
    /* Before any allocation. */
    if (pthread_atfork(prepare, NULL, child) != 0) return 2;

    char *volatile p = malloc(100);
    free(p);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) return 2;
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) {
            allocate();
            _exit(0);
        }
        int st = wait_child(pid);
        if (st == -1) {
            fprintf(stderr, "FAIL atfork_early %s: fork %d: the child hung (killed after 10 s)\n", mode, i);
            _exit(1);
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "FAIL atfork_early %s: fork %d: child status 0x%x\n", mode, i, st);
            _exit(1);
        }
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("atfork_early: ok (%s)\n", mode);
    return 0;
}
