#!/usr/bin/env python3
"""Host side of the smoke test: write the pattern into the ivshmem backing
file before the VM starts (write), check the guest's reply after (check).
Must match pattern() in vfio_bar_smoke_test.c."""
import struct
import sys

M64 = (1 << 64) - 1
MIB = 1 << 20


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
        for i in range(chunks):
            if op == "write":
                f.seek(i * MIB)
                f.write(struct.pack("<QQ", pattern(seed, i), 0))
            else:
                f.seek(i * MIB + 8)
                got = struct.unpack("<Q", f.read(8))[0]
                if got != (~pattern(seed, i)) & M64:
                    bad += 1
    if op == "check":
        print(f"ivshmem: {chunks - bad}/{chunks} guest replies match")
        sys.exit(1 if bad else 0)
    print(f"ivshmem: wrote {chunks} host patterns (seed {seed:#x})")


if __name__ == "__main__":
    main()
