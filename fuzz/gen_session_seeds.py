#!/usr/bin/env python3
"""Writes the stateful seeds of fuzz/fuzz_rpc_session.c (its comment gives
the format) into fuzz/corpus/fuzz_rpc_session/state-*.  Each seed is a
correct use of the paths that need handles the server issued; the fuzzer
mutates them into incorrect ones (a tensor freed before it is read, a wider
dtype).  Run from anywhere: python3 fuzz/gen_session_seeds.py"""
import os
import struct

# names[] indices in fuzz_rpc_session.c
SYSLIB, CREATE, MGF, RANDOM_FILL = 0, 1, 2, 3
SET_OUT_ZC, GET_OUTPUT, RUN, SET_INPUT_ZC = 5, 6, 7, 4
GRAPH_COPY = 10

F32 = 2 | (2 << 2)  # code float, bits 32, lanes 1


def getglobal(name):
    return bytes([1, name])


def call(fslot, *args):
    return bytes([2, fslot, len(args)]) + b"".join(args)


def tensor(slot, dtype, *shape):
    return bytes([slot, dtype, len(shape)]) + bytes(shape)


def alloc(dtype, *shape):
    return bytes([3]) + tensor(0, dtype, *shape)


def freedata(slot):
    return bytes([4, slot])


def copyto(t, payload):
    return bytes([6]) + t + bytes([len(payload)]) + payload


def copyfrom(t, n):
    return bytes([7]) + t + bytes([n])


def a_int(v):
    return bytes([0, v & 0xFF])


def a_str(name):
    return bytes([1, name])


def a_mod(slot):
    return bytes([3, slot])


def a_tensor(t):
    return bytes([7]) + t


STATEFUL = 0x80

# Handles are remembered in reply order; the comments give each one's slot.
graph = [
    getglobal(SYSLIB),                        # 0 SystemLib
    call(0),                                  # 1 its module
    getglobal(CREATE),                        # 2 create
    call(2, a_str(GRAPH_COPY), a_mod(1), a_int(1), a_int(0)),  # 3 executor
    getglobal(MGF),                           # 4 ModuleGetFunction
    call(4, a_mod(3), a_str(SET_OUT_ZC), a_int(1)),   # 5
    call(4, a_mod(3), a_str(GET_OUTPUT), a_int(1)),   # 6
    call(4, a_mod(3), a_str(RUN), a_int(1)),          # 7
    call(4, a_mod(3), a_str(SET_INPUT_ZC), a_int(1)), # 8
    alloc(F32, 4),                            # 9  A (zero-copy output)
    alloc(F32, 4),                            # 10 B (get_output's out)
    alloc(F32, 4),                            # 11 X (zero-copy input)
    call(8, a_int(0), a_tensor(tensor(11, F32, 4))),
    call(5, a_int(0), a_tensor(tensor(9, F32, 4))),
    call(7),
    call(6, a_int(0), a_tensor(tensor(10, F32, 4))),
    freedata(9),
    call(6, a_int(0)),
    freedata(10),
    freedata(11),
]

fill = [
    getglobal(RANDOM_FILL),                   # 0
    alloc(F32, 64),                           # 1: 256 bytes
    call(0, a_tensor(tensor(1, F32, 16))),
    copyfrom(tensor(1, F32, 16), 64),
    freedata(1),
]

copies = [
    alloc(F32, 8),                            # 0
    copyto(tensor(0, F32, 8), bytes(range(32))),
    copyfrom(tensor(0, F32, 8), 32),
    freedata(0),
    copyfrom(tensor(0, F32, 8), 32),
]

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_rpc_session")
for name, ops in [("graph-zero-copy", graph), ("random-fill", fill), ("copies", copies)]:
    with open(os.path.join(out, "state-" + name), "wb") as f:
        f.write(bytes([STATEFUL]) + b"".join(ops))
