// The hex and JSON-escape kernels are static inline in their headers, so that Swift's callers
// inline them; they are included here too, so that the build sees a change to them. The UTF-8
// kernel needs AVX2, which the rest of the program is not compiled for: it is a function of its
// own, compiled for AVX2, and called only when the processor has it.
#include "hex_digits.h"
#include "json_escape.h"
#include "utf8_blocks.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

/// Nonzero when a byte of the 32 at `p` breaks RFC 3629 given the three before it (see
/// WebSocketUTF8Validator.blockCheck, which does the same 16 at a time).
__attribute__((target("avx2")))
static inline int utf8_block_bad_avx2(const uint8_t *p) {
    const __m256i c0 = _mm256_set1_epi8((char)0xC0), c80 = _mm256_set1_epi8((char)0x80);
    const __m256i e0 = _mm256_set1_epi8((char)0xE0), f0 = _mm256_set1_epi8((char)0xF0);
    const __m256i fe = _mm256_set1_epi8((char)0xFE), f5 = _mm256_set1_epi8((char)0xF5);
    const __m256i a0 = _mm256_set1_epi8((char)0xA0), ed = _mm256_set1_epi8((char)0xED);
    const __m256i x9f = _mm256_set1_epi8((char)0x9F), x90 = _mm256_set1_epi8((char)0x90);
    const __m256i f4 = _mm256_set1_epi8((char)0xF4), x8f = _mm256_set1_epi8((char)0x8F);
    __m256i cur = _mm256_loadu_si256((const __m256i *)p);
    __m256i p1 = _mm256_loadu_si256((const __m256i *)(p - 1));
    __m256i p2 = _mm256_loadu_si256((const __m256i *)(p - 2));
    __m256i p3 = _mm256_loadu_si256((const __m256i *)(p - 3));
    // Unsigned a >= b as max(a, b) == a; a > b as !(max(b, a) == b).
#define GE(a, b) _mm256_cmpeq_epi8(_mm256_max_epu8((a), (b)), (a))
#define LT(a, b) _mm256_andnot_si256(GE((a), (b)), _mm256_set1_epi8((char)0xFF))
    __m256i is_continuation = _mm256_cmpeq_epi8(_mm256_and_si256(cur, c0), c80);
    __m256i needs_continuation = _mm256_or_si256(_mm256_or_si256(GE(p1, c0), GE(p2, e0)), GE(p3, f0));
    __m256i bad = _mm256_xor_si256(is_continuation, needs_continuation);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi8(_mm256_and_si256(cur, fe), c0));               // C0, C1
    bad = _mm256_or_si256(bad, GE(cur, f5));                                                     // F5-FF
    bad = _mm256_or_si256(bad, _mm256_and_si256(_mm256_cmpeq_epi8(p1, e0), LT(cur, a0)));        // overlong 3
    bad = _mm256_or_si256(bad, _mm256_andnot_si256(GE(x9f, cur), _mm256_cmpeq_epi8(p1, ed)));    // surrogates
    bad = _mm256_or_si256(bad, _mm256_and_si256(_mm256_cmpeq_epi8(p1, f0), LT(cur, x90)));       // overlong 4
    bad = _mm256_or_si256(bad, _mm256_andnot_si256(GE(x8f, cur), _mm256_cmpeq_epi8(p1, f4)));    // > U+10FFFF
#undef GE
#undef LT
    return !_mm256_testz_si256(bad, bad);
}

/// The 32 bytes at `p` are ASCII, and the three before them end a character (none of them is a
/// lead byte reaching into the block): valid without the full check.
__attribute__((target("avx2")))
static inline int utf8_block_ascii_avx2(const uint8_t *p) {
    return _mm256_movemask_epi8(_mm256_loadu_si256((const __m256i *)p)) == 0 && p[-1] < 0xC0 && p[-2] < 0xE0 && p[-3] < 0xF0;
}

__attribute__((target("avx2")))
static size_t utf8_valid_through_avx2(const uint8_t *base, size_t start, size_t count) {
    size_t i = start;
    for (; count - i >= 32; i += 32) {
        if (utf8_block_ascii_avx2(base + i)) continue;
        if (utf8_block_bad_avx2(base + i)) return i;
    }
    if (i == count) return count;
    // The last block ends at the last byte, over bytes already checked; it needs the three bytes
    // before it, which the caller's `start` >= 3 guarantees when count >= 35.
    if (count >= 35 && (utf8_block_ascii_avx2(base + count - 32) || !utf8_block_bad_avx2(base + count - 32))) return count;
    return i;
}

size_t wsctl_utf8_valid_through(const uint8_t *base, size_t start, size_t count) {
    // (The processor's features are read once, before main, by the compiler runtime.)
    return __builtin_cpu_supports("avx2") ? utf8_valid_through_avx2(base, start, count) : start;
}
#else
size_t wsctl_utf8_valid_through(const uint8_t *base, size_t start, size_t count) {
    (void)base;
    (void)count;
    return start;
}
#endif
