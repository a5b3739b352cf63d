/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KD_MLOCK_WORKS is 0 in an ASan build: its mlock() interceptor is a no-op
 * (shadow memory cannot be locked), so "lo" in smaps and VmLck assertions
 * only mean something without it. Everything else is still asserted.
 */
#ifndef KEYD_TEST_SAN_H
#define KEYD_TEST_SAN_H

#if defined(__SANITIZE_ADDRESS__)
#define KD_MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KD_MLOCK_WORKS 0
#endif
#endif
#ifndef KD_MLOCK_WORKS
#define KD_MLOCK_WORKS 1
#endif

#endif
