#!/bin/bash
# qemu-img check's refusals, with its words and exit status: formats
# without a check, header rules, extensions, encryption, backing files,
# data files, bitmaps.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/check-common.bash"
cd "$TEST_DIR"

head -c 65536 /dev/urandom > raw.img;                    same_check raw.img raw
: > empty.img;                                           same_check empty.img empty
same_check missing.qcow2 missing
mkdir adir;                                              same_check adir directory
printf 'QFI\373\0\0\0\1' > v1.img; head -c 100 /dev/zero >> v1.img; same_check v1.img qcow-v1
poke_be v1.img 24 8 1048576; poke v1.img 32 "0c 09";     same_check v1.img qcow-v1-valid
printf 'QFI\373\0\0\0\3' > short.img;                    same_check short.img header-8-bytes

fresh a.qcow2; poke_be a.qcow2 4 4 4;                    same_check a.qcow2 version-4
fresh a.qcow2; poke_be a.qcow2 20 4 22;                  same_check a.qcow2 cluster-bits-22
fresh a.qcow2; poke_be a.qcow2 100 4 100;                same_check a.qcow2 header-too-short
fresh a.qcow2; poke_be a.qcow2 72 8 0x20;                same_check a.qcow2 unknown-incompat
fresh a.qcow2; poke_be a.qcow2 72 8 0x8000000000000001;  same_check a.qcow2 unknown-incompat-dirty
fresh a.qcow2; poke_be a.qcow2 88 8 0x8000000000000000;  same_check a.qcow2 unknown-autoclear
fresh a.qcow2; poke_be a.qcow2 72 8 1;                   same_check a.qcow2 dirty
fresh a.qcow2; poke_be a.qcow2 72 8 2;                   same_check a.qcow2 corrupt
fresh a.qcow2; poke_be a.qcow2 96 4 7;                   same_check a.qcow2 refcount-order-7
fresh a.qcow2; poke_be a.qcow2 56 4 129;                 same_check a.qcow2 reftable-too-large
fresh a.qcow2; poke_be a.qcow2 36 4 0;                   same_check a.qcow2 l1-too-small
fresh a.qcow2; poke_be a.qcow2 24 8 0xFFFFFFFFFFFFFFFF;  same_check a.qcow2 size-max
fresh a.qcow2; poke_be a.qcow2 24 8 0x4000000000000000;  same_check a.qcow2 size-too-big
fresh a.qcow2; poke_be a.qcow2 32 4 3;                   same_check a.qcow2 crypt-method-3
fresh a.qcow2; poke_be a.qcow2 40 8 0x7FFFFFFFBFFFFFF8;  same_check a.qcow2 l1-unreadable
fresh a.qcow2; poke_be a.qcow2 0x74 4 0xFFFF;            same_check a.qcow2 extension-too-large

# qemu-img's LUKS key setup now and then fails to time its PBKDF run
# ("Unable to get accurate CPU usage"): try again
for try in 1 2 3 4 5; do
    qemu-img create -f qcow2 --object secret,id=sec0,data=abc \
        -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 luks.qcow2 16M \
        >/dev/null && break
done
same_check luks.qcow2 luks

fresh base.qcow2
qemu-img create -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2 64M >/dev/null
mv base.qcow2 base.moved;                               same_check ov.qcow2 backing-missing
head -c 1M /dev/zero > base.qcow2;                      same_check ov.qcow2 backing-not-qcow2
cp base.moved base.qcow2; poke_be base.qcow2 4 4 5;     same_check ov.qcow2 backing-broken

qemu-img create -f qcow2 -o data_file=d.raw df.qcow2 64M >/dev/null
rm d.raw;                                               same_check df.qcow2 data-file-missing

fresh bm.qcow2; qemu-img bitmap --add bm.qcow2 b0
qemu-io -c 'write -P 1 1M 64k' bm.qcow2 >/dev/null
cp bm.qcow2 a.qcow2; poke_be a.qcow2 88 8 0;            same_check a.qcow2 bitmaps-autoclear-clear
check_done
