#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""gen_corpus.py - (re)write the seed corpus in fault/corpus/ from this file.

The seeds are committed; this script documents what each one means and
regenerates them after a change to an input format.

fuzz_proto input: [max index][piece seed] then the client byte stream.
  max index % 8 -> 16, 17, 31, 64, 100, 255, 2000, 4000 bytes
  piece seed: 0x80 = callback stops early, 0x40 = big pieces
fuzz_chat input: [cfg] then operations [op = action << 3 | slot][operands]
  cfg & 3 -> max_line 16, 40, 100, 700; (cfg >> 2) & 3 -> max_rooms 1..4
  action 0-2 connect, 3-4 disconnect, 5 reject [code], 6 bye [reason],
  7 fail the next room allocation, 8-9 raw bytes [len][bytes],
  10-31 command (action - 10) [name index], see build_cmd() in fuzz_chat.c
fuzz_fedev input: stream entry values, each [len 2 bytes big-endian][bytes]
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fault", "corpus")

# ---- fuzz_proto ------------------------------------------------------------
PROTO = {
    "session": b"\x06\x01" + b"alice\n/add rust\r\n/join rust\nhello bob\n/users\n"
               b"/users all\n/whisper bob psst\n/w bob two words\n/list\n/help\n//shrug\n/quit bye\n",
    "crlf": b"\x00\x03" + b"a\r\n\r\n\r\r\nabcdefghijklmno\r\nabcdefghijklmnop\r\n"
            b"abcdefghijklmnopq\r\nx\ry\n\r",
    "long-lines": b"\x00\x41" + b"A" * 40 + b"\nshort\n" + b"B" * 16 + b"\n" + b"C" * 17 +
                  b"\n" + b"D" * 16 + b"\r\n" + b"E" * 300 + b"\r\nafter\n",
    "long-4000": b"\x07\x40" + b"F" * 4000 + b"\n" + b"G" * 4001 + b"\n" + b"H" * 4000 + b"\r\n",
    "bad-utf8": b"\x06\x02" + b"\x80\n\xc0\xaf\n\xe0\x80\xaf\n\xed\xa0\x80\n\xf4\x90\x80\x80\n"
                b"\xff\n\xc3\n\xea\xb0\nok \xea\xb0\x80\n\xf0\x9f\x98\x80\n",
    "korean": b"\x06\x05" + "김철수\n/add 방\n안녕하세요 여러분\n/w 김철수 안녕\n/join 방\n"
              "가나다라마바사아자차카타파하가나\n".encode(),
    "controls": b"\x06\x07" + b"a\0b\n\0\n\x1b[31mred\n\xc2\x85\n\x7f\n\ttab\n   \n"
                b"\xe3\x80\x80\n\xef\xbb\xbf\n",
    "names": b"\x06\x09" + "Élan\nélan\nΩmega\nωMEGA\nПривет\nПРИВЕТ\nÝ\ný\nĀ\nā\nŸ\nÿ\nİ\n"
             "/add r23456789012345678901234567890ab\n/join a\u3000b\n".encode(),
    "early-stop": b"\x06\x85" + b"one\ntwo\nthree\n" * 8,
    # KB1: utf8_fold(U+0178) = U+0179, so the fold is not idempotent.
    "regress-kb1-fold-u0178": b"\x00\x00\xc5\xb8\n",
}


# ---- fuzz_chat --------------------------------------------------------------
def op(action, slot, *operands):
    return bytes([action << 3 | slot]) + bytes(operands)


def cmd(n, slot, p=0):
    return op(10 + n, slot, p)


def raw(slot, data):
    return op(8, slot, len(data)) + data


NICK, ADD, JOIN, RM, LEAVE, LIST, USERS, USERS_ALL, W, W_USAGE, HELP, QUIT, TEXT = range(13)
ALICE, ALICE_UP, BOB, LOBBY, X, KIM, ELAN, ELAN_LO, OMEGA, OMEGA_LO = 0, 1, 3, 4, 6, 7, 8, 9, 11, 12
PRIVET, PRIVET_UP, ROOM1, ROOM1_UP, R32, R33, SLASH, IDEO = 13, 14, 15, 16, 19, 20, 21, 23

CHAT = {
    "session": b"\x06" + op(0, 0) + op(0, 1) + cmd(NICK, 0, ALICE) + cmd(NICK, 1, BOB) +
               cmd(ADD, 0, ROOM1) + cmd(JOIN, 1, ROOM1) + cmd(TEXT, 1, 7) + cmd(USERS, 0) +
               cmd(W, 0, BOB) + cmd(LIST, 0) + cmd(USERS_ALL, 1) + cmd(HELP, 1) +
               cmd(QUIT, 0) + op(3, 0) + cmd(LIST, 1),
    "clash": b"\x0a" + op(0, 0) + op(0, 1) + op(0, 2) + cmd(NICK, 0, ALICE) +
             cmd(NICK, 1, ALICE_UP) + cmd(NICK, 1, ELAN) + cmd(NICK, 2, ELAN_LO) +
             cmd(NICK, 2, OMEGA) + op(0, 3) + cmd(NICK, 3, OMEGA_LO) + cmd(NICK, 3, PRIVET) +
             op(0, 4) + cmd(NICK, 4, PRIVET_UP) + cmd(NICK, 4, SLASH) + cmd(NICK, 4, IDEO) +
             cmd(NICK, 4, 18) + cmd(NICK, 4, KIM) + cmd(ADD, 0, ROOM1) + cmd(ADD, 1, ROOM1_UP) +
             cmd(ADD, 1, R32) + cmd(ADD, 1, R33) + cmd(ADD, 2, LOBBY),
    "owner-handoff": b"\x0e" + op(0, 0) + op(0, 1) + op(0, 2) + cmd(NICK, 0, ALICE) +
                     cmd(NICK, 1, BOB) + cmd(NICK, 2, X) + cmd(ADD, 0, ROOM1) +
                     cmd(JOIN, 1, ROOM1) + cmd(JOIN, 2, ROOM1) + cmd(LEAVE, 0) +
                     cmd(RM, 1, ROOM1) + op(4, 0) + cmd(LIST, 2) + cmd(RM, 1, ROOM1) +
                     cmd(RM, 2, LOBBY) + cmd(LEAVE, 2) + cmd(LIST, 1),
    "rooms-full": b"\x01" + op(0, 0) + op(0, 1) + cmd(NICK, 0, X) + cmd(NICK, 1, BOB) +
                  op(7, 0) + cmd(ADD, 0, ROOM1) + cmd(ADD, 0, ROOM1) + cmd(ADD, 1, KIM) +
                  cmd(JOIN, 1, ROOM1) + cmd(JOIN, 1, ROOM1) + op(3, 0) + cmd(LIST, 1) +
                  cmd(ADD, 1, KIM),
    "raw-framing": b"\x01" + op(0, 0) + op(0, 1) +
                   raw(0, b"alice\r\n/add r\r\nhi\r") + raw(0, b"\n" + b"Z" * 60 + b"\nok\n") +
                   raw(1, b"bob\n\x80\n\0\n\x1b\n   \n/join r\n/JOIN R\n/nosuch\n/add\n/w\n") +
                   raw(1, "안녕\n//slash\n/w alice 귓속말\n".encode()) +
                   op(5, 0, 0) + op(5, 0, 1) + op(5, 1, 2) + op(5, 1, 3),
    "bye": b"\x05" + op(0, 0) + op(0, 1) + op(0, 2) + cmd(NICK, 1, ALICE) +
           cmd(NICK, 2, BOB) + op(6, 0, 2) + op(6, 1, 1) + cmd(TEXT, 2, 1) + op(0, 0) +
           op(6, 2, 0) + op(3, 1) + op(0, 1) + cmd(LIST, 0) + cmd(HELP, 0) + cmd(QUIT, 0),
    "korean-700": b"\x03" + op(0, 0) + op(0, 1) + cmd(NICK, 0, KIM) + cmd(NICK, 1, BOB) +
                  cmd(19, 0, 10) + raw(1, ("가" * 80 + "\n").encode()) + cmd(W, 1, KIM) +
                  cmd(21, 1, 5),
    # KB2: "/join <201 Korean syllables>" -> ERR 430 text cut mid-character.
    "regress-kb2-err-utf8-cut": b"\x03" + op(0, 0) + cmd(NICK, 0, BOB) + cmd(19, 0, 200),
}


# ---- fuzz_fedev -------------------------------------------------------------
def entries(*values):
    return b"".join(len(v).to_bytes(2, "big") + v for v in values)


ORG = b"hub1/1733400000123.4242 "
FEDEV = {
    "room-lines": entries(ORG + b"1 M lobby MSG lobby zed hello", ORG + b"2 M ops JOIN Ops zed",
                          ORG + b"3 M ops MSG Ops zed in ops", ORG + b"4 M ops OWNER Ops zed",
                          ORG + b"5 M ops PART Ops zed left"),
    "presence": entries(ORG + b"0 P hub1\nR lobby 2 -\nR Ops 1 zed\nU zed Ops\nU yan lobby\n",
                        ORG + b"0 S", b"hub2/1.2 0 P hub2\nU \xce\xa3\xce\xbf lobby\n"),
    "whisper-rm": entries(ORG + b"6 W hub0 zed ann psst", ORG + b"7 D ops zed",
                          ORG + b"8 O ops", "hub1/1.1 9 M 하늘 MSG 하늘 민수 안녕".encode()),
    "hostile": entries(ORG + b"99999999999999999999999 M lobby MSG lobby zed x",
                       ORG + b"-1 M lobby MSG lobby zed x", ORG + b"1a M lobby MSG lobby zed x",
                       b"", b"hub1 1 O ops", b"/1.1 1 O ops",
                       ORG + b"10 M lobby BYE SHUTDOWN x", ORG + b"11 M lobby MSG ops zed x",
                       ORG + b"12 M lobby MSG lobby zed \x00\xff\x1b[31m",
                       ORG + b"13 W hub0 zed ann", ORG + b"0 P hub9\nU x lobby\n",
                       ORG + b"14 M lobby MSG lobby zed " + b"x" * 17000),
}


def main():
    for target, seeds in (("fuzz_proto", PROTO), ("fuzz_chat", CHAT), ("fuzz_fedev", FEDEV)):
        d = os.path.join(OUT, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%s: %d seeds in %s" % (target, len(seeds), os.path.relpath(d, ROOT)))


if __name__ == "__main__":
    main()
