/*
 * Hashes of the guest disk: the whole disk (as hashing `qemu-img convert
 * -O raw` output) and every cluster-sized block with where it is stored.
 * Digests come from libcrypto's EVP interface.
 */
#ifndef QC_HASH_H
#define QC_HASH_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_chain.h"
#include "qc_guest.h"

#define QC_HASH_MAX 64     /* bytes of the largest digest */

/* The EVP digest named "sha256", "sha1" or "md5"; NULL for any other. */
const void *qc_hash_algorithm(const char *name);

/* Hashes the guest disk of the chain's top image with ALGORITHM (from
 * qc_hash_algorithm) into OUT; *OUT_LEN is the digest's size.  Zero ranges
 * are hashed from a static zero buffer without reading.  Errors as
 * qc_guest_stream. */
int qc_guest_hash(struct qc_chain *c, const void *algorithm, unsigned char *out,
                  unsigned *out_len, enum qc_export_stage *stage, uint64_t *fail_offset);

/* One cluster-sized guest block (the last may be shorter): HAS_HOST when
 * all of it is stored contiguously in the image file itself at HOST. */
struct qc_hash_block {
    uint64_t offset, length;
    bool has_host;
    uint64_t host;
    unsigned char sha256[32];
};

typedef int (*qc_hash_block_fn)(void *ctx, const struct qc_hash_block *b);

/* Calls FN for each block of the guest disk in order.  Errors as
 * qc_guest_stream; the blocks before the failure have been passed. */
int qc_guest_hash_map(struct qc_chain *c, qc_hash_block_fn fn, void *ctx,
                      enum qc_export_stage *stage, uint64_t *fail_offset);

/* Lower-case hex of LEN bytes into OUT (2*LEN+1 bytes). */
void qc_hash_hex(const unsigned char *d, unsigned len, char *out);

#endif
