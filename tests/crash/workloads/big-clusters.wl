# With 2 MiB clusters: partial writes into new clusters, copy on write.
write -P 0x11 0 64k
write -P 0x12 3M 4k
flush
write -P 0x13 1M 8k
write -z 2M 2M
flush
write -P 0x14 4M 2M
