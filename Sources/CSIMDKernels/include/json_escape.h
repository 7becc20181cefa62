#ifndef WSCTL_JSON_ESCAPE_H
#define WSCTL_JSON_ESCAPE_H

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// One bit per byte of the 16 at `p` (bit k for byte k) that JSON escaping must rewrite: a
/// control character (below 0x20), `"` or `\`. The caller holds 16 readable bytes at `p`.
///
/// Unsigned "below 0x20" as max(v, 0x1F) == 0x1F (SSE2 compares bytes as signed), and one
/// movemask for the 16 answers (Swift's SIMD masks reached the same answer in about twice the
/// instructions).
static inline uint32_t wsctl_json_escape_flags16(const uint8_t *p) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F));
    __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x22));
    __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x5C));
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(control, _mm_or_si128(quote, backslash)));
#else
    uint32_t flags = 0;
    for (int k = 0; k < 16; k++) {
        uint8_t c = p[k];
        if (c < 0x20 || c == 0x22 || c == 0x5C) flags |= 1u << k;
    }
    return flags;
#endif
}

#endif
