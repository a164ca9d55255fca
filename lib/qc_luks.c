/*
 * QEMU 7.2's LUKS open (crypto/block-luks.c) up to the key: the header
 * checks, the parsing of its algorithm names, and the bounds of the reads
 * that follow.  Metadata tools use it to give the answer QEMU gives with
 * the key, without one.  docs/design.md, "Encrypted images".
 */
#include "qc_util.h"
#include "qc_luks.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"

#define LUKS_SECTOR 512u
#define LUKS_SLOTS 8u
#define LUKS_STRIPES 4000u
#define LUKS_NAME_LEN 32u
/* key material starts after the first 4096 bytes */
#define LUKS_HEADER_SECTORS (4096u / LUKS_SECTOR)
#define SLOT_ENABLED 0x00AC71F3u
#define SLOT_DISABLED 0x0000DEADu

struct luks_slot {
    uint32_t active, iterations, key_offset, stripes;
};

struct luks_header {
    uint8_t magic[6];
    uint16_t version;
    char cipher_name[LUKS_NAME_LEN + 1], cipher_mode[LUKS_NAME_LEN + 1], hash_spec[LUKS_NAME_LEN + 1];
    bool name_nul, mode_nul, hash_nul;
    uint32_t payload_offset, key_bytes, mk_iterations;
    struct luks_slot slot[LUKS_SLOTS];
};

/* A message, never NULL: the caller reports it whatever happens. */
#define msg(...) luks_msg(qc_asprintf(__VA_ARGS__))
static char *luks_msg(char *s)
{
    return s ? s : strdup("out of memory");
}

static void name_field(char *dst, bool *nul, const uint8_t *src)
{
    memcpy(dst, src, LUKS_NAME_LEN);
    dst[LUKS_NAME_LEN] = '\0';
    *nul = memchr(src, 0, LUKS_NAME_LEN) != NULL;
}

static void header_decode(struct luks_header *h, const uint8_t *b)
{
    memcpy(h->magic, b, 6);
    h->version = qc_be16(b + 6);
    name_field(h->cipher_name, &h->name_nul, b + 8);
    name_field(h->cipher_mode, &h->mode_nul, b + 40);
    name_field(h->hash_spec, &h->hash_nul, b + 72);
    h->payload_offset = qc_be32(b + 104);
    h->key_bytes = qc_be32(b + 108);
    h->mk_iterations = qc_be32(b + 164);
    for (unsigned i = 0; i < LUKS_SLOTS; i++) {
        const uint8_t *s = b + 208 + 48 * i;
        h->slot[i] = (struct luks_slot){ qc_be32(s), qc_be32(s + 4), qc_be32(s + 40), qc_be32(s + 44) };
    }
}

/* Sectors a slot's key material takes, rounded up to whole header-sized
 * units (QEMU's splitkeylen_sectors, in its unsigned arithmetic). */
static uint32_t slot_sectors(const struct luks_header *h, uint32_t stripes)
{
    uint32_t bytes = h->key_bytes * stripes;
    uint32_t sectors = bytes / LUKS_SECTOR + (bytes % LUKS_SECTOR != 0);
    return (sectors + LUKS_HEADER_SECTORS - 1) / LUKS_HEADER_SECTORS * LUKS_HEADER_SECTORS;
}

/* qcrypto_block_luks_check_header */
static char *check_header(const struct luks_header *h)
{
    if (memcmp(h->magic, "LUKS\xba\xbe", 6) != 0)
        return msg("Volume is not in LUKS format");
    if (h->version != 1)
        return msg("LUKS version %u is not supported", h->version);
    if (!h->name_nul)
        return msg("LUKS header cipher name is not NUL terminated");
    if (!h->mode_nul)
        return msg("LUKS header cipher mode is not NUL terminated");
    if (!h->hash_nul)
        return msg("LUKS header hash spec is not NUL terminated");
    if (h->payload_offset < LUKS_HEADER_SECTORS)
        return msg("LUKS payload is overlapping with the header");
    if (h->mk_iterations == 0)
        return msg("LUKS key iteration count is zero");
    for (unsigned i = 0; i < LUKS_SLOTS; i++) {
        const struct luks_slot *s = &h->slot[i];
        uint32_t start = s->key_offset, len = slot_sectors(h, s->stripes);
        if (s->stripes != LUKS_STRIPES)
            return msg("Keyslot %u is corrupted (stripes %d != %d)", i, (int)s->stripes,
                       (int)LUKS_STRIPES);
        if (s->active != SLOT_DISABLED && s->active != SLOT_ENABLED)
            return msg("Keyslot %u state (active/disable) is corrupted", i);
        if (s->active == SLOT_ENABLED && s->iterations == 0)
            return msg("Keyslot %u iteration count is zero", i);
        if (start < LUKS_HEADER_SECTORS)
            return msg("Keyslot %u is overlapping with the LUKS header", i);
        if (start + len > h->payload_offset)
            return msg("Keyslot %u is overlapping with the encrypted payload", i);
        for (unsigned j = i + 1; j < LUKS_SLOTS; j++) {
            uint32_t start2 = h->slot[j].key_offset, len2 = slot_sectors(h, h->slot[j].stripes);
            if (start + len > start2 && start2 + len2 > start)
                return msg("Keyslots %u and %u are overlapping in the header", i, j);
        }
    }
    return NULL;
}

static int lookup(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

static const char *const hash_names[] = { "md5", "sha1", "sha224", "sha256", "sha384", "sha512",
                                          "ripemd160" };
static const unsigned hash_sizes[] = { 16, 20, 28, 32, 48, 64, 20 };
static const char *const mode_names[] = { "ecb", "cbc", "xts", "ctr" };
enum { MODE_XTS = 2 };
static const char *const ivgen_names[] = { "plain", "plain64", "essiv" };
enum { IVGEN_ESSIV = 2 };

/* The ciphers QEMU's LUKS driver names, with the key sizes each has. */
static const struct {
    const char *name;
    unsigned sizes[3];
} ciphers[] = {
    { "aes", { 16, 24, 32 } },
    { "cast5", { 16, 0, 0 } },
    { "serpent", { 16, 24, 32 } },
    { "twofish", { 16, 24, 32 } },
};

/* The cipher index, or -1 with QEMU's message in *ERR. */
static int cipher_lookup(const char *name, int mode, uint32_t key_bytes, char **err)
{
    uint32_t size = mode == MODE_XTS ? key_bytes / 2 : key_bytes;

    for (size_t i = 0; i < sizeof ciphers / sizeof ciphers[0]; i++) {
        if (strcmp(name, ciphers[i].name) != 0)
            continue;
        for (size_t k = 0; k < 3 && ciphers[i].sizes[k]; k++)
            if (ciphers[i].sizes[k] == size)
                return (int)i;
    }
    *err = msg("Algorithm '%s' with key size %d bytes not supported", name, (int)size);
    return -1;
}

/* qcrypto_block_luks_essiv_cipher: the IV cipher keyed by a digest */
static char *essiv_check(int cipher, uint32_t key_bytes, int hash)
{
    static const char *const label[] = { "AES", NULL, "Serpent", "Twofish" };
    unsigned digest = hash_sizes[hash];

    if (cipher == 1)
        return msg("Cipher cast5-%u not supported with essiv", (unsigned)key_bytes * 8);
    if (digest == 16 || digest == 24 || digest == 32)
        return NULL;
    return msg("No %s cipher with key size %u available", label[cipher], digest);
}

/* qcrypto_block_luks_parse_header */
static char *parse_header(const struct luks_header *h)
{
    char mode[LUKS_NAME_LEN + 1], *ivgen, *ivhash;
    int hash_iv = -1, m, cipher, hash, iv;
    char *err = NULL;

    memcpy(mode, h->cipher_mode, sizeof mode);
    if (!(ivgen = strchr(mode, '-')))
        return msg("Unexpected cipher mode string format '%s'", h->cipher_mode);
    *ivgen++ = '\0';
    if ((ivhash = strchr(ivgen, ':'))) {
        *ivhash++ = '\0';
        if ((hash_iv = lookup(ivhash, hash_names, 7)) < 0)
            return msg("Hash algorithm '%s' not supported", ivhash);
    }
    if ((m = lookup(mode, mode_names, 4)) < 0)
        return msg("Cipher mode '%s' not supported", mode);
    if ((cipher = cipher_lookup(h->cipher_name, m, h->key_bytes, &err)) < 0)
        return err;
    if ((hash = lookup(h->hash_spec, hash_names, 7)) < 0)
        return msg("Hash algorithm '%s' not supported", h->hash_spec);
    if ((iv = lookup(ivgen, ivgen_names, 3)) < 0)
        return msg("IV generator '%s' not supported", ivgen);
    if (iv == IVGEN_ESSIV) {
        if (!ivhash)
            return msg("Missing IV generator hash specification");
        return essiv_check(cipher, h->key_bytes, hash_iv);
    }
    return NULL;
}

char *qc_luks_open_error(struct qc_file *f, uint64_t offset, uint64_t length)
{
    static const char outside[] = "Request for data outside of extension header";
    uint8_t raw[QC_LUKS_HEADER_SIZE];
    struct luks_header h;
    char *err;

    /* QEMU's read function for the crypto area keeps reads inside it */
    if (length < QC_LUKS_HEADER_SIZE)
        return msg("%s", outside);
    if (!qc_qemu_read_ok(offset, QC_LUKS_HEADER_SIZE) ||
        qc_file_read_padded(f, offset, raw, sizeof raw) < 0)
        return msg("Could not read encryption header: Input/output error");
    header_decode(&h, raw);
    if ((err = check_header(&h)) || (err = parse_header(&h)))
        return err;
    /* the key slots are tried in order; the right key opens the first
     * enabled one, after reading its key material */
    for (unsigned i = 0; i < LUKS_SLOTS; i++) {
        const struct luks_slot *s = &h.slot[i];
        /* QEMU computes both in 32 bits */
        uint64_t at = (uint32_t)(s->key_offset * LUKS_SECTOR);
        uint64_t len = (uint32_t)(h.key_bytes * s->stripes);
        if (s->active != SLOT_ENABLED)
            continue;
        if (at + len > length)
            return msg("%s", outside);
        return NULL;
    }
    return msg("Invalid password, cannot unlock any keyslot");
}
