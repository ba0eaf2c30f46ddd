/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The pattern the host writes into ivshmem's backing file
 * (tests/smoke/ivshmem_pattern.py): the first u64 of every 4 KiB page p
 * is ivshmem_pattern(seed, p), a splitmix64 of the seed and the page.
 */
#ifndef VFIO_LAB_IVSHMEM_PATTERN_H
#define VFIO_LAB_IVSHMEM_PATTERN_H

#include <stdint.h>

static inline uint64_t ivshmem_pattern(uint64_t seed, uint64_t page)
{
	uint64_t z = seed + (page + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif
