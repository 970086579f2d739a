# SPDX-License-Identifier: BSD-3-Clause
# fault/fuzz.mk - fuzzing (fault/fuzz/README.md), included from fault/fault.mk.
#
#   make fuzz-quick   libFuzzer targets + network fuzzer, bounded (~75 s)
#   make fuzz         the same, longer (FUZZ_SECONDS per target, default 300)
#
# Both write fault/results/fuzz.json and exit non-zero on any crash or
# violated invariant.  Crash inputs stay in a temporary directory (printed),
# never in the repository.  FUZZ_ALLOW_KNOWN=1 tolerates the known, reported
# core bugs replayed from fault/corpus/*/regress-*.

DEPS_fault += clang libclang-rt-14-dev python3

FUZZ_CC            ?= clang
FUZZ_BUILD         := $(BUILD)/fuzz
FUZZ_SECONDS       ?= 300
FUZZ_NET_SECONDS   ?= 120
FUZZ_QUICK_SECONDS ?= 30
FUZZ_QUICK_NET     ?= 30
FUZZ_PY            := /usr/bin/python3
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS        := -std=gnu11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE \
                      -DFORKCHAT_VERSION='"$(VERSION)"' -Icore -Ifault/fuzz \
                      -Wall -Wextra $(FUZZ_SAN)
# Coverage feedback comes from core/ only: the harness's own loops over
# every byte would only slow each run down.
FUZZ_COV           := -fsanitize=fuzzer-no-link
FUZZ_HDRS          := $(CORE_HDRS) $(wildcard fault/fuzz/*.h) fault/fuzz/stub/fiu.h
FUZZ_BINS          := $(FUZZ_BUILD)/fuzz_proto $(FUZZ_BUILD)/fuzz_chat $(FUZZ_BUILD)/fuzz_fedev

.PHONY: fuzz fuzz-quick fuzz-build fuzz-corpus

$(FUZZ_BUILD)/obj/%.o: core/%.c $(FUZZ_HDRS) | $(FAULT_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_COV) -c $< -o $@

# The chat's objects (core/chat/), and room.c (room_create's calloc) with
# its failpoint compiled in, answered by fuzz_chat.c's fiu_fail().
FUZZ_CHAT_OBJS     := chat/chat.o chat/chatfed.o chat/room.o chat/nick.o chat/remote.o chat/name.o
$(FUZZ_BUILD)/obj/chat/room.o: core/chat/room.c $(FUZZ_HDRS) | $(FAULT_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_COV) -DFIU_ENABLE -Ifault/fuzz/stub -c $< -o $@

$(FUZZ_BUILD)/obj/fuzz_%.o: fault/fuzz/fuzz_%.c $(FUZZ_HDRS) | $(FAULT_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -c $< -o $@

$(FUZZ_BUILD)/fuzz_proto: $(addprefix $(FUZZ_BUILD)/obj/,fuzz_proto.o lib/proto.o lib/utf8.o chat/name.o) | $(FAULT_STAMP)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(NAME_LIBS)

$(FUZZ_BUILD)/fuzz_chat: $(addprefix $(FUZZ_BUILD)/obj/,fuzz_chat.o $(FUZZ_CHAT_OBJS) lib/buf.o lib/proto.o lib/utf8.o sys/log.o sys/safefile.o) | $(FAULT_STAMP)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(NAME_LIBS)

$(FUZZ_BUILD)/fuzz_fedev: $(addprefix $(FUZZ_BUILD)/obj/,fuzz_fedev.o fed/fedev.o $(FUZZ_CHAT_OBJS) lib/buf.o lib/proto.o lib/utf8.o sys/log.o sys/safefile.o) | $(FAULT_STAMP)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(NAME_LIBS)

fuzz-build: $(FUZZ_BINS) $(BUILD)/forkchatd | $(FAULT_STAMP) ## build the libFuzzer targets

fuzz-quick: fuzz-build | $(FAULT_STAMP) ## bounded fuzzing: libFuzzer targets + network fuzzer (~75 s)
	$(FUZZ_PY) fault/fuzz/run.py --seconds $(FUZZ_QUICK_SECONDS) --net-seconds $(FUZZ_QUICK_NET) \
	  $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

fuzz: fuzz-build | $(FAULT_STAMP) ## longer fuzzing (FUZZ_SECONDS per target, default 300)
	$(FUZZ_PY) fault/fuzz/run.py --seconds $(FUZZ_SECONDS) --net-seconds $(FUZZ_NET_SECONDS) \
	  $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

fuzz-corpus: ## rewrite the seed corpus fault/corpus/ from fault/fuzz/gen_corpus.py
	$(FUZZ_PY) fault/fuzz/gen_corpus.py
