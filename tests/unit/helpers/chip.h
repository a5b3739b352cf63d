/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A simulated chip for a test fixture. Normally this is kd_sim_chip_init,
 * in process. Under valgrind (helpers/vg.h) it runs $KEYD_BUILD/keyd-simfw
 * init instead: valgrind does not follow exec (--trace-children=no), so the
 * two RSA-4096 key generations run natively; under memcheck they take 3 to
 * 10 minutes per chip, all in OpenSSL's prime search. The chip is the same
 * (keyd-simfw init is kd_sim_chip_init), and chip creation itself stays
 * memory-checked by the ASan run (LeakSanitizer included). Falls back to the
 * in-process call when keyd-simfw is missing or fails.
 */
#ifndef KEYD_TEST_CHIP_H
#define KEYD_TEST_CHIP_H

#include "keyd/sim.h"

int kd_test_chip_init(const char *dir, const struct kd_sim_init_opts *opts);

#endif
