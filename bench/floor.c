/* Raw floors for bench/forja.py: the same workloads as forja and CPython,
 * written with bare system calls and process-shared pthread primitives.
 *
 *   floor REPS SCALE    prints one JSON object: workload -> list of samples
 *
 * Workloads (one sample = one timed batch; the driver takes medians):
 *   pipe_rtt_us        8-byte ping-pong over two pipes, µs per round trip
 *   socketpair_rtt_us  the same over one Unix socket pair (what a duplex
 *                      Pipe uses), µs per round trip
 *   locked_incr_mps    2 processes × M increments under one process-shared
 *                      pthread mutex, million increments per second
 *   fork_wait_us       fork + _exit(0) + waitpid, µs each
 *
 * Build: gcc -O2 -pthread -o floor floor.c
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void full_write(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* 0 on end of file. */
static int full_read(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r == 0) return 0;
        if (r < 0) die("read");
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

static void print_samples(const char *name, const double *v, int n, int last) {
    printf("\"%s\": [", name);
    for (int i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", v[i]);
    printf("]%s\n", last ? "" : ",");
}

#define STOP (~0ULL)

/* The parent writes on pwfd and reads on prfd; the child echoes from crfd to
 * cwfd until it reads STOP. */
static void ping_pong(int prfd, int pwfd, int crfd, int cwfd, int closers[], int nclose,
                      long n, int reps, double *out) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        for (int i = 0; i < nclose; i++) close(closers[i]);
        unsigned long long x;
        while (full_read(crfd, &x, sizeof x) && x != STOP) full_write(cwfd, &x, sizeof x);
        _exit(0);
    }
    unsigned long long x = 0;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (long i = 0; i < n; i++) {
            x = (unsigned long long)i;
            full_write(pwfd, &x, sizeof x);
            if (!full_read(prfd, &x, sizeof x)) die("early eof");
        }
        out[r] = (now() - t) / n * 1e6;
    }
    x = STOP;
    full_write(pwfd, &x, sizeof x);
    waitpid(pid, NULL, 0);
}

static void pipe_rtt(long n, int reps, double *out) {
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) die("pipe");
    int child_closes[] = {to_child[1], from_child[0]};
    ping_pong(from_child[0], to_child[1], to_child[0], from_child[1], child_closes, 2, n, reps, out);
    close(to_child[0]);
    close(to_child[1]);
    close(from_child[0]);
    close(from_child[1]);
}

static void socketpair_rtt(long n, int reps, double *out) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    int child_closes[] = {sv[0]};
    /* The parent uses sv[0] both ways; the child sv[1]. */
    ping_pong(sv[0], sv[0], sv[1], sv[1], child_closes, 1, n, reps, out);
    close(sv[0]);
    close(sv[1]);
}

struct shared {
    pthread_mutex_t m;
    volatile long counter;
    atomic_int ready;
    atomic_int go;
};

static void locked_incr(long m, int reps, double *out) {
    struct shared *s = mmap(0, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) die("mmap");
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->m, &a);
    for (int r = 0; r < reps; r++) {
        s->counter = 0;
        atomic_store(&s->ready, 0);
        atomic_store(&s->go, 0);
        pid_t pids[2];
        for (int k = 0; k < 2; k++) {
            pids[k] = fork();
            if (pids[k] < 0) die("fork");
            if (pids[k] == 0) {
                atomic_fetch_add(&s->ready, 1);
                while (!atomic_load(&s->go)) sched_yield();
                for (long i = 0; i < m; i++) {
                    pthread_mutex_lock(&s->m);
                    s->counter++;
                    pthread_mutex_unlock(&s->m);
                }
                _exit(0);
            }
        }
        while (atomic_load(&s->ready) < 2) sched_yield();
        double t = now();
        atomic_store(&s->go, 1);
        waitpid(pids[0], NULL, 0);
        waitpid(pids[1], NULL, 0);
        double dt = now() - t;
        if (s->counter != 2 * m) {
            fprintf(stderr, "lost updates: %ld\n", s->counter);
            exit(2);
        }
        out[r] = 2.0 * m / dt / 1e6;
    }
}

static void fork_wait(long n, int reps, double *out) {
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid < 0) die("fork");
            if (pid == 0) _exit(0);
            int st;
            if (waitpid(pid, &st, 0) != pid) die("waitpid");
        }
        out[r] = (now() - t) / n * 1e6;
    }
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    double scale = argc > 2 ? atof(argv[2]) : 1.0;
    if (reps < 1 || reps > 1000 || !(scale > 0)) {
        fprintf(stderr, "usage: floor [REPS] [SCALE]\n");
        return 2;
    }
    double *v = calloc((size_t)reps, sizeof *v);
    printf("{\n");
    pipe_rtt((long)(50000 * scale), reps, v);
    print_samples("pipe_rtt_us", v, reps, 0);
    socketpair_rtt((long)(50000 * scale), reps, v);
    print_samples("socketpair_rtt_us", v, reps, 0);
    locked_incr((long)(5000000 * scale), reps, v);
    print_samples("locked_incr_mps", v, reps, 0);
    fork_wait((long)(400 * scale), reps, v);
    print_samples("fork_wait_us", v, reps, 1);
    printf("}\n");
    return 0;
}
