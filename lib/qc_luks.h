/* The LUKS header of an encrypted qcow2 image, as QEMU's keyed open reads it. */
#ifndef QC_LUKS_H
#define QC_LUKS_H

#include <stdint.h>

#include "qc_io.h"

/* The header QEMU reads from the start of the crypto area. */
#define QC_LUKS_HEADER_SIZE 592u

/*
 * What QEMU's LUKS open says, given the key, about the header in the
 * crypto area of LENGTH bytes at OFFSET (the crypto header extension):
 * NULL when the open succeeds, else QEMU's message (to free).  The key
 * is taken to unlock the first enabled key slot: a wrong key is the one
 * failure this cannot foresee.  Bytes past the end of the file read as
 * zeros, as QEMU reads them.
 */
char *qc_luks_open_error(struct qc_file *f, uint64_t offset, uint64_t length);

#endif
