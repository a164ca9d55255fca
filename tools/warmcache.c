/*
 * warmcache: reads every allocated extent of the given files (holes are
 * skipped with SEEK_DATA/SEEK_HOLE), so that what a check reads next is in
 * the page cache.  Prints the bytes read.  Used by tools/bench.sh.
 *
 *   warmcache FILE...
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static char buf[1 << 20];
    uint64_t total = 0;

    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        off_t end, pos = 0;
        if (fd < 0) {
            perror(argv[i]);
            return 1;
        }
        end = lseek(fd, 0, SEEK_END);
        while (pos < end) {
            off_t data = lseek(fd, pos, SEEK_DATA), hole;
            if (data < 0)
                break;
            hole = lseek(fd, data, SEEK_HOLE);
            if (hole < 0)
                hole = end;
            for (off_t p = data; p < hole;) {
                size_t n = (size_t)(hole - p) < sizeof buf ? (size_t)(hole - p) : sizeof buf;
                ssize_t r = pread(fd, buf, n, p);
                if (r <= 0)
                    break;
                p += r;
                total += (uint64_t)r;
            }
            pos = hole;
        }
        close(fd);
    }
    printf("%llu\n", (unsigned long long)total);
    return 0;
}
