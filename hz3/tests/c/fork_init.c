// fork while another thread is inside hz3's initialisation (issue 17 item 1):
//
//   fork_init fork|rawfork
//
// hz3 initialises at its first call. A second thread R makes that first call
// (hz3_print_config) and is held inside the initialisation: this program
// defines getenv (exported with -rdynamic, so hz3's getenv calls land here)
// and blocks R in it. Then the main thread forks:
//
// * fork: with glibc's fork(). The program's prepare handler (registered
//   after hz3's, so it runs first) releases R 200 ms later. hz3's prepare
//   handler must wait for R's init to finish; a child that inherits an
//   unfinished init would spin in its first malloc.
// * rawfork: with the raw fork system call (no handlers at all): the child
//   inherits the unfinished init and its first malloc must initialise again.
//
// R is made with clone() rather than pthread_create, because pthread_create
// itself allocates (the thread's DTV), which would initialise hz3 in the main
// thread first. R shares the main thread's TLS; it only runs hz3's
// initialisation, which does not touch TLS. The child allocates and exits; the
// parent waits at most 10 s for it. Prints "fork_init: ok".
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
void hz3_print_config(void) __attribute__((weak));

static atomic_long r_tid;
static atomic_int hook_hit, in_prepare, released, r_done;
static int raw_mode;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to `ms` for *flag; returns whether it was set. */
static int wait_flag(atomic_int *flag, long ms) {
    for (long i = 0; i < ms; i++) {
        if (atomic_load(flag)) return 1;
        sleep_ms(1);
    }
    return atomic_load(flag);
}

char *getenv(const char *name) {
    if (atomic_load(&r_tid) == syscall(SYS_gettid) && !atomic_load(&released)) {
        /* R, inside hz3's initialisation: hold it there. */
        atomic_store(&hook_hit, 1);
        if (raw_mode) {
            wait_flag(&released, 10000);
        } else {
            wait_flag(&in_prepare, 10000);
            sleep_ms(200);
        }
        atomic_store(&released, 1);
    }
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static int racer(void *arg) {
    (void)arg;
    atomic_store(&r_tid, syscall(SYS_gettid));
    hz3_print_config(); /* hz3's first call: runs its initialisation */
    atomic_store(&r_done, 1);
    return 0;
}

static void prepare(void) {
    atomic_store(&in_prepare, 1);
}

int main(int argc, char **argv) {
    raw_mode = argc > 1 && !strcmp(argv[1], "rawfork");
    alarm(30);
    if (!hz3_print_config) {
        fprintf(stderr, "FAIL: hz3 is not preloaded (no hz3_print_config)\n");
        return 2;
    }
    /* No allocation before R's first call. */
    if (pthread_atfork(prepare, NULL, NULL) != 0) return 2;
    size_t stack_size = 1 << 20;
    char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return 2;
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    if (clone(racer, stack + stack_size, flags, NULL) == -1) {
        perror("clone");
        return 2;
    }
    if (!wait_flag(&hook_hit, 10000)) {
        fprintf(stderr, "FAIL: the racing thread never got into hz3's initialisation (hz3 initialised earlier?)\n");
        return 2;
    }
    pid_t pid = raw_mode ? (pid_t)syscall(SYS_fork) : fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        /* With fork(), hz3's prepare handler waited for R, which had left the hook. */
        if (!raw_mode && !atomic_load(&released)) _exit(4);
        char *volatile a = malloc(100);
        char *volatile b = malloc(1 << 20);
        if (!a || !b) _exit(3);
        a[0] = b[0] = 1;
        free(a);
        free(b);
        _exit(0);
    }
    atomic_store(&released, 1);
    int st = -1;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) break;
        st = -1;
        sleep_ms(10);
    }
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fprintf(stderr, "FAIL fork_init %s: the child hung in its first malloc (killed after 10 s)\n",
                raw_mode ? "rawfork" : "fork");
        return 1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 4) {
        fprintf(stderr, "FAIL fork_init fork: fork() did not wait for the other thread's initialisation\n");
        return 1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "FAIL fork_init: child status 0x%x\n", st);
        return 1;
    }
    if (!wait_flag(&r_done, 10000)) {
        fprintf(stderr, "FAIL fork_init: the racing thread did not finish hz3's initialisation\n");
        return 1;
    }
    char *volatile p = malloc(100);
    free(p);
    printf("fork_init: ok (%s)\n", raw_mode ? "rawfork" : "fork");
    return 0;
}
