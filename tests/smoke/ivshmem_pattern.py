#!/usr/bin/env python3
"""Host side of the ivshmem tests: write the pattern into the ivshmem backing
file before the VM starts (write), check the guest's reply after (check).

Layout (the guest tests rely on it): the first 8 bytes of every 4 KiB page p
hold pattern(seed, p); the 8 bytes after that, in the first page of every
MiB i, are where the smoke test writes ~pattern(seed, i * 256).
Must match tests/include/ivshmem_pattern.h."""
import struct
import sys

M64 = (1 << 64) - 1
MIB = 1 << 20
PAGE = 4096


def pattern(seed, i):
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def main():
    op, path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
    with open(path, "r+b") as f:
        f.seek(0, 2)
        chunks = f.tell() // MIB
        bad = 0
        if op == "write":
            f.seek(0)
            buf = bytearray(chunks * MIB)
            for p in range(chunks * MIB // PAGE):
                struct.pack_into("<Q", buf, p * PAGE, pattern(seed, p))
            f.write(buf)
        else:
            for i in range(chunks):
                f.seek(i * MIB + 8)
                got = struct.unpack("<Q", f.read(8))[0]
                if got != (~pattern(seed, i * MIB // PAGE)) & M64:
                    bad += 1
    if op == "check":
        print(f"ivshmem: {chunks - bad}/{chunks} guest replies match")
        sys.exit(1 if bad else 0)
    print(f"ivshmem: wrote {chunks * MIB // PAGE} page patterns (seed {seed:#x})")


if __name__ == "__main__":
    main()
