// SPDX-License-Identifier: MIT
/* supervisor/http.c: the one value the status service parses itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "supervisor/daemon.h"

static void test_lag_limit(void **state)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1e3", "0x10", "1.5",
					   "12345678901234567890", "99999999999999999999" };
	uint64_t v = 7;

	(void)state;
	assert_true(http_parse_lag_limit("0", &v));
	assert_int_equal(v, 0);
	assert_true(http_parse_lag_limit("16777216", &v));
	assert_int_equal(v, 16777216);
	assert_true(http_parse_lag_limit("9999999999999999999", &v)); /* 19 digits: fits */
	assert_true(v == 9999999999999999999ull);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		assert_false(http_parse_lag_limit(bad[i], &v));
		assert_int_equal(v, 7); /* untouched on error */
	}
	assert_false(http_parse_lag_limit(NULL, &v));
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lag_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
