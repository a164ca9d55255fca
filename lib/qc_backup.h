/*
 * Backups of a repair (--backup) and their undo (--undo).
 *
 * A backup holds the bytes every write of a plan overwrites, and enough
 * about the image to tell, before the undo writes a byte, that the image is
 * the one the backup was made for and still as the repair left it.
 *
 * Format, version 2 (every integer big-endian, every hash SHA-256):
 *   body
 *     "QCREPBK2"               8 bytes magic
 *     u64 B                    length of the image before the repair
 *     u64 A                    length the repair leaves it (A >= B)
 *     u64 H                    length of the header cluster (<= B)
 *     32 bytes                 hash of the image's first H bytes with the
 *                              bytes of every record below zeroed (what the
 *                              repair does not change there: the identity)
 *     u64 N                    number of records
 *     N times                  u64 offset, u64 length L, u64 saved S (L or 0),
 *                              32 bytes hash of the L bytes as the repair
 *                              leaves them, S bytes as they were before
 *     32 bytes                 hash of every byte of the body before it
 *   trailer, appended once the repair's writes are done and flushed
 *     "QCREPEND"               8 bytes magic
 *     u64 A                    the image's length after the repair
 *     32 bytes                 hash of the 48 bytes before it (the body's
 *                              hash, the magic and A)
 * A record lies either inside the old file (S = L: its old bytes are saved)
 * or past the old end (S = 0: the undo cuts the file back to B instead);
 * a write that crosses the old end gives one record of each kind.
 * Records follow the plan's order; the undo writes them back in reverse.
 */
#ifndef QC_BACKUP_H
#define QC_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_io.h"
#include "qc_plan.h"

#define QC_BACKUP_HASH_LEN 32

/* A backup being written: the body is on disk, the trailer not yet. */
struct qc_backup_writer {
    int fd;
    uint64_t size_after;
    uint8_t body_hash[QC_BACKUP_HASH_LEN];
};

/* Saves the body of a backup of plan P on F (as F holds it now) to PATH,
 * a new file (qc_sidefile rules), written and synced.  On success W holds
 * the open file for qc_backup_finish.  *ERR gets a static message. */
int qc_backup_save(const struct qc_plan *p, struct qc_file *f, const char *path,
                   struct qc_backup_writer *w, const char **err);
/* After the plan was carried out on F: appends the trailer, syncs, closes. */
int qc_backup_finish(struct qc_backup_writer *w, const struct qc_file *f, const char **err);
/* Closes W without a trailer (the repair did not complete). */
void qc_backup_abandon(struct qc_backup_writer *w);

struct qc_backup_record {
    uint64_t off, len;
    const uint8_t *before;        /* LEN bytes, or NULL past the old end */
    const uint8_t *after_hash;    /* QC_BACKUP_HASH_LEN bytes */
};

/* A backup read and verified (qc_backup_parse). */
struct qc_backup {
    uint8_t *buf;                 /* the whole file (owned) */
    size_t len;
    uint64_t size_before, size_after, header_len;
    const uint8_t *header_hash;
    size_t n;
    struct qc_backup_record *v;
    bool finished;                /* the trailer is there: the repair completed */
};

/* Checks BUF (LEN bytes, taken over: freed with B) as a backup: magic and
 * version, every length against what is left of the file, the body's and
 * the trailer's hashes.  QC_E_FORMAT with *ERR saying why. */
int qc_backup_parse(struct qc_backup *b, uint8_t *buf, size_t len, const char **err);
/* Reads PATH and parses it. */
int qc_backup_load(struct qc_backup *b, const char *path, const char **err);
void qc_backup_free(struct qc_backup *b);

/* What qc_backup_verify found. */
struct qc_backup_state {
    size_t differences;           /* reasons not to restore */
    bool wrong_image;             /* the header cluster is not this backup's image's */
    bool already_restored;        /* every saved range holds its old bytes, length B */
};

/* Called with one line (no newline) per difference. */
typedef void (*qc_backup_say_fn)(void *ctx, const char *line);

/* Compares F with the state backup B expects, reading only: the identity
 * (header cluster outside the records), the length (A once finished; B to
 * A for a repair that stopped), every saved range (what the repair wrote,
 * or its old bytes: partly undone), every record past the old end (what
 * the repair wrote, once finished).  Each difference goes to SAY. */
int qc_backup_verify(const struct qc_backup *b, struct qc_file *f, qc_backup_say_fn say,
                     void *ctx, struct qc_backup_state *st);

/* Writes every saved range back into F (opened for writing), last first,
 * cuts or extends F to B and flushes.  *NRANGES counts the ranges written. */
int qc_backup_apply(const struct qc_backup *b, struct qc_file *f, size_t *nranges);

#endif
