/*
 * pbb-spawn: runs one program and reports its wall time and rusage on fd 3.
 *
 * Why this exists: the bench is a .NET process with a ~50 MiB resident image. When a process
 * execs, Linux folds the peak RSS of the address space it is leaving into ru_maxrss
 * (fs/exec.c exec_mmap -> setmax_mm_hiwater_rss). A plugin spawned straight from the bench
 * (vfork + exec) therefore reports the bench's RSS, not its own. Spawned from this tiny
 * process instead, the floor is this process's own few hundred KiB.
 *
 * Usage: pbb-spawn PROGRAM [ARGS...]   (environment, stdin, stdout, stderr pass through)
 * fd 3 receives: "<wall_ns> <wait_status> <ru_maxrss_kib> <ru_utime_us> <ru_stime_us>\n"
 * Exit status: 0 if the report was written, 127 if PROGRAM could not be started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pbb-spawn PROGRAM [ARGS...] (report on fd 3)\n");
        return 2;
    }
    /* The report fd belongs to us, not to the measured program. */
    if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
        perror("pbb-spawn: fd 3");
        return 2;
    }

    struct timespec start, end;
    pid_t pid;
    int status;
    struct rusage ru;

    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = posix_spawn(&pid, argv[1], NULL, NULL, argv + 1, environ);
    if (rc != 0) {
        fprintf(stderr, "pbb-spawn: %s: %s\n", argv[1], strerror(rc));
        return 127;
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("pbb-spawn: wait4");
            return 2;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);

    long long wall_ns = (long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    long long utime_us = (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
    long long stime_us = (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
    char line[160];
    int n = snprintf(line, sizeof line, "%lld %d %ld %lld %lld\n", wall_ns, status, ru.ru_maxrss, utime_us, stime_us);
    if (write(3, line, (size_t)n) != n) {
        perror("pbb-spawn: report");
        return 2;
    }
    return 0;
}
