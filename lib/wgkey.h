/* SPDX-License-Identifier: MIT */
/* WireGuard keys: base64 encoding, generation, the public key of a private one. */
#ifndef SUP_LIB_WGKEY_H
#define SUP_LIB_WGKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/common.h"

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 44 /* without the terminating NUL */

/**
 * wgkey_from_base64() - decode a WireGuard key (44 chars of standard base64).
 * @b64: the text; surrounding whitespace is not accepted.
 * @key: receives 32 bytes.
 *
 * Return: true when @b64 is exactly one padded base64 encoding of 32 bytes.
 */
bool wgkey_from_base64(const char *b64, uint8_t key[WG_KEY_LEN]);
/* wgkey_to_base64() - encode 32 bytes as 44 chars plus NUL into @out. */
void wgkey_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1]);
/* wgkey_generate() - a new clamped Curve25519 private key. Return: 0 or -errno. */
int wgkey_generate(uint8_t key[WG_KEY_LEN]) _must_check_;
/* wgkey_public() - the public key of @priv (as `wg pubkey`). Return: 0 or -EINVAL. */
int wgkey_public(const uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN]) _must_check_;

#endif
