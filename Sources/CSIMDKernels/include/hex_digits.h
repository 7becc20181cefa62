#ifndef WSCTL_HEX_DIGITS_H
#define WSCTL_HEX_DIGITS_H

#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__SSE2__)
/// The 32 digits of the 16 bytes at `bytes`, to `out`: each byte's high and low nibbles are
/// interleaved in output order (unpack), and each nibble becomes '0' + n, plus 'a' - '0' - 10
/// where n > 9.
static inline void wsctl_hex_digits_block(const uint8_t *bytes, uint8_t *out) {
    const __m128i low = _mm_set1_epi8(0x0F);
    const __m128i nine = _mm_set1_epi8(9);
    const __m128i zero = _mm_set1_epi8('0');
    const __m128i letters = _mm_set1_epi8('a' - '0' - 10);
    __m128i v = _mm_loadu_si128((const __m128i *)bytes);
    __m128i high = _mm_and_si128(_mm_srli_epi16(v, 4), low);
    __m128i lower = _mm_and_si128(v, low);
    __m128i first = _mm_unpacklo_epi8(high, lower);
    __m128i second = _mm_unpackhi_epi8(high, lower);
    first = _mm_add_epi8(_mm_add_epi8(first, zero), _mm_and_si128(_mm_cmpgt_epi8(first, nine), letters));
    second = _mm_add_epi8(_mm_add_epi8(second, zero), _mm_and_si128(_mm_cmpgt_epi8(second, nine), letters));
    _mm_storeu_si128((__m128i *)out, first);
    _mm_storeu_si128((__m128i *)(out + 16), second);
}
#endif

/// Writes the lowercase hex digits of `bytes` (`count` of them) to `out`, two per byte, when
/// there are at least 16, and returns how many bytes it wrote the digits of (all of them, or 0:
/// fewer than 16, or no SSE2), the caller writing the rest.
///
/// 16 bytes at a time, about 12 instructions for 32 digits (Swift's generic SIMD conversions and
/// comparisons became calls and per-lane loops); the last block ends at the last byte, over
/// digits already written, so that no byte is left to a slower loop.
static inline size_t wsctl_hex_digits_blocks(const uint8_t *bytes, size_t count, uint8_t *out) {
#if defined(__SSE2__)
    if (count < 16) return 0;
    size_t i = 0;
    for (; count - i >= 16; i += 16) wsctl_hex_digits_block(bytes + i, out + 2 * i);
    if (i < count) wsctl_hex_digits_block(bytes + count - 16, out + 2 * (count - 16));
    return count;
#else
    (void)bytes;
    (void)count;
    (void)out;
    return 0;
#endif
}

#endif
