/* Fuzz target: an arbitrary file opened for writing and put through every
 * kind of write.  Damage must be reported, never crash, hang or read or
 * write outside the file. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qc_iocmd.h"
#include "qc_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const cmds[] = {
    "write -P 1 0 64k", "write -P 2 100k 3k", "write -z 64k 64k", "write -c -P 3 1M 64k",
    "discard 0 64k", "write -z -u 0 128k", "read -v 0 512", "read -P 1 0 4k", "flush",
    "write 3M 512k",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qc_writer_options o = { .cache_mode = QC_CACHE_WRITEBACK, .no_lock = true };
    struct qc_iocmd_session s;
    struct qc_writer w;
    FILE *null = fopen("/dev/null", "w");
    char path[64];
    int fd = memfd_create("fuzz_write", 0);
    unsigned pick = size ? data[size - 1] : 0;

    if (fd < 0 || !null) {
        if (fd >= 0)
            close(fd);
        if (null)
            fclose(null);
        return 0;
    }
    if (size && write(fd, data, size) != (ssize_t)size)
        goto out;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    /* the last byte picks the cache mode and which commands run */
    o.cache_mode = pick & 1 ? QC_CACHE_WRITETHROUGH : QC_CACHE_WRITEBACK;
    if (qc_writer_open(&w, path, &o, NULL) < 0)
        goto out;
    memset(&s, 0, sizeof s);
    s.w = &w;
    s.out = null;
    s.err = null;
    s.prog = "fuzz";
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (pick & (2u << (i % 7)) || i % 3 == 0)
            qc_iocmd_run_line(&s, cmds[i]);
    qc_iocmd_close(&s);
out:
    fclose(null);
    close(fd);
    return 0;
}
