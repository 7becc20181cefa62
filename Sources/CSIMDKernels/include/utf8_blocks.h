#ifndef WSCTL_UTF8_BLOCKS_H
#define WSCTL_UTF8_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/// How far, from `start`, the bytes of `base` (`count` of them) are valid UTF-8, checked with AVX2
/// 32 bytes at a time: `count` when every byte passed, else the start of the first block that
/// holds a byte breaking RFC 3629 (the caller walks that block again for the exact index) or of
/// the bytes left unchecked. An ASCII block with no character before it reaching into it passes
/// without the full check; once fewer than 32 bytes are left, the last 32 (over bytes already
/// checked, when `count` >= 35) are checked as one more block. `start` must be at least 3, and
/// the three bytes before it must end consistently: each byte is checked against the three before
/// it, as WebSocketUTF8Validator.blockCheck does 16 at a time. A character left unfinished at the
/// end is not an error here (the caller looks at the end). Returns `start` when the processor has
/// no AVX2.
size_t wsctl_utf8_valid_through(const uint8_t *base, size_t start, size_t count);

#endif
