// The kernel is static inline in the header, so that Swift's callers inline it; this file gives
// the target a source of its own.
#include "hex_digits.h"
