/*
 * hash.c: 64-bit FNV-1a, used to key and check entries of the program binary cache.
 * Not cryptographic: a cache entry also stores its full identity text, so a collision is
 * detected, never trusted.
 */
#include "internal.h"

uint64_t clt__hash64(uint64_t seed, const void *data, size_t size)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
