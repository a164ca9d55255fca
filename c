read 0 512
quit
