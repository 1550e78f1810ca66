// SPDX-License-Identifier: MIT
/*
 * WireGuard key encoding and derivation, byte-compatible with `wg genkey`
 * and `wg pubkey`. Curve25519 comes from libsodium rather than our own code.
 */
#include "lib/wgkey.h"
#include "lib/mem.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

static bool sodium_ready(void)
{
	static int state; /* 0 unknown, 1 ok, -1 failed */

	if (!state)
		state = sodium_init() >= 0 ? 1 : -1;
	return state > 0;
}

bool wgkey_from_base64(const char *b64, uint8_t key[WG_KEY_LEN])
{
	uint8_t tmp[WG_KEY_LEN + 2];
	size_t len = 0;
	const char *end = NULL;

	if (!b64 || strlen(b64) != WG_KEY_B64_LEN || b64[WG_KEY_B64_LEN - 1] != '=')
		return false;
	if (sodium_base642bin(tmp, sizeof(tmp), b64, WG_KEY_B64_LEN, NULL, &len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != WG_KEY_LEN || !end || *end != '\0')
		return false;
	/*
	 * Reject non-canonical encodings (unused low bits of the last
	 * character set): they would decode to the same key as another text.
	 */
	char again[WG_KEY_B64_LEN + 1];

	wgkey_to_base64(tmp, again);
	if (strcmp(again, b64) != 0) {
		explicit_zero(tmp, sizeof(tmp));
		return false;
	}
	memcpy(key, tmp, WG_KEY_LEN);
	explicit_zero(tmp, sizeof(tmp));
	return true;
}

void wgkey_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1])
{
	sodium_bin2base64(out, WG_KEY_B64_LEN + 1, key, WG_KEY_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
}

int wgkey_generate(uint8_t key[WG_KEY_LEN])
{
	if (!sodium_ready())
		return -EIO;
	randombytes_buf(key, WG_KEY_LEN);
	/* Clamp as curve25519_clamp_secret() in wireguard-tools does. */
	key[0] &= 248;
	key[31] = (uint8_t)((key[31] & 127) | 64);
	return 0;
}

int wgkey_public(const uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN])
{
	if (!sodium_ready())
		return -EIO;
	/* libsodium clamps the scalar itself, as wg pubkey does. */
	if (crypto_scalarmult_curve25519_base(pub, priv) != 0)
		return -EINVAL;
	return 0;
}
