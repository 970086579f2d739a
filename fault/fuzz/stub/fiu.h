/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fiu.h - stand-in for libfiu's header, used only by the fuzz build of
 * core/chat/chat.c (-DFIU_ENABLE -Ifault/fuzz/stub).  fuzz_chat.c defines
 * fiu_fail() so the fuzz input decides when "forkchatd/chat/calloc"
 * fails, without libfiu and without any system call.
 */
#ifndef FORKCHAT_FUZZ_FIU_STUB_H
#define FORKCHAT_FUZZ_FIU_STUB_H

int	fiu_fail(const char *name);
#define fiu_init(flags)	0

#endif
