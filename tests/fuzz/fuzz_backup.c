/* Fuzz target: backup files.  Every input is parsed as a backup (lengths
 * against the file, hashes, trailer); one that parses is compared with an
 * image made of the input's own bytes, reading only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qc_backup.h"
#include "qc_io.h"

static void say(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qc_backup b;
    struct qc_backup_state st;
    struct qc_file f;
    const char *err = NULL;
    uint8_t *copy = malloc(size ? size : 1);
    char path[64];
    int fd;

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (qc_backup_parse(&b, copy, size, &err) < 0) {
        qc_backup_free(&b);
        return 0;
    }
    fd = memfd_create("fuzz_backup", 0);
    if (fd >= 0 && (!size || write(fd, data, size) == (ssize_t)size)) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (qc_file_open(&f, path, QC_OPEN_NOLOCK, NULL) == 0) {
            qc_backup_verify(&b, &f, say, NULL, &st);
            qc_file_close(&f);
        }
    }
    if (fd >= 0)
        close(fd);
    qc_backup_free(&b);
    return 0;
}
