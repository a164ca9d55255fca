/* Helpers for unit tests: the fixture images (fixtures/NAME.qcow2.gz,
 * decompressed with zlib), scratch files, and a header built in memory. */
#ifndef UNIT_FIXTURES_H
#define UNIT_FIXTURES_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

static __attribute__((unused)) const char *fixtures_dir(void)
{
    const char *d = getenv("FIXTURES");
    return d && *d ? d : "fixtures";
}

/* The first MAX bytes of fixture NAME ("v3" for fixtures/v3.qcow2.gz);
 * *len gets the length.  NULL if it cannot be read. */
static __attribute__((unused)) uint8_t *fixture_bytes(const char *name, size_t max, size_t *len)
{
    char path[4096];
    gzFile gz;
    uint8_t *buf;
    int n;

    snprintf(path, sizeof path, "%s/%s.qcow2.gz", fixtures_dir(), name);
    if (!(gz = gzopen(path, "rb")))
        return NULL;
    buf = malloc(max);
    n = buf ? gzread(gz, buf, (unsigned)max) : -1;
    gzclose(gz);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

/* Names of every fixture image (NAME.qcow2.gz, side files excluded);
 * returns the count, fills at most MAX names (caller frees each). */
static __attribute__((unused)) size_t fixture_names(char **names, size_t max)
{
    DIR *d = opendir(fixtures_dir());
    struct dirent *de;
    size_t n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) && n < max) {
        size_t l = strlen(de->d_name);
        const char *suffix = ".qcow2.gz";
        if (l <= strlen(suffix) || strcmp(de->d_name + l - strlen(suffix), suffix))
            continue;
        /* side files are NAME.base.qcow2.gz etc: their stem has a dot */
        if (memchr(de->d_name, '.', l - strlen(suffix)))
            continue;
        names[n] = strndup(de->d_name, l - strlen(suffix));
        if (names[n])
            n++;
    }
    closedir(d);
    return n;
}

/* Writes BUF to a new scratch file; returns its path (caller frees and
 * unlinks). */
static __attribute__((unused)) char *scratch_file(const uint8_t *buf, size_t len)
{
    char *path = strdup("/tmp/qc-unit.XXXXXX");
    int fd;

    if (!path)
        return NULL;
    fd = mkstemp(path);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
        if (fd >= 0)
            close(fd);
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

static __attribute__((unused)) void put_be(uint8_t *p, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

#endif
