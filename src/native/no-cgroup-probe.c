/*
 * Linked into the short-lived CNI executables (podbridge, podbridge-ipam) with -Wl,--wrap=statfs64,--wrap=fopen64.
 *
 * At start-up the .NET runtime probes cgroups twice (the GC for a memory limit, the runtime for a CPU quota):
 * statfs("/sys/fs/cgroup") says which cgroup version the host runs, and then each probe reads the whole of
 * /proc/self/mountinfo. On a Kubernetes node that file has a line per mount, and every pod adds several (its
 * network namespace bind mount, rootfs overlays, secret and projected-volume tmpfs), so the probe costs start-up
 * time in proportion to the number of pods: +2.3 ms of CPU per invocation with 300 mounts on the development
 * machine (bench/README.md). A plugin process lives for milliseconds and allocates a few MiB; neither a memory
 * limit nor a CPU quota changes what it does. So the runtime is told what it would see on a host without cgroups:
 * statfs("/sys/fs/cgroup") fails (cgroup version 0: no limits are read) and /proc/self/mountinfo cannot be opened
 * (the runtime looks for the hierarchy mount even when the version is 0, then gives up without reading
 * /proc/self/cgroup). Every other statfs and fopen goes to libc unchanged; the managed code opens files with
 * open(2), not fopen, so only the runtime's native probes are affected.
 */
#define _LARGEFILE64_SOURCE
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/vfs.h>

int __real_statfs64(const char *path, struct statfs64 *buf);

int __wrap_statfs64(const char *path, struct statfs64 *buf)
{
    if (path != NULL && strcmp(path, "/sys/fs/cgroup") == 0) {
        errno = ENOENT;
        return -1;
    }
    return __real_statfs64(path, buf);
}

FILE *__real_fopen64(const char *path, const char *mode);

FILE *__wrap_fopen64(const char *path, const char *mode)
{
    if (path != NULL && strcmp(path, "/proc/self/mountinfo") == 0) {
        errno = ENOENT;
        return NULL;
    }
    return __real_fopen64(path, mode);
}
