#!/usr/bin/python3
"""Copies the relax.VMExecutable bytes out of a library that TVM's
export_library wrote, so that the unit tests can parse a real executable
without dlopen and without TVM.

    extract_exec.py MODEL.so OUT.bin

The library embeds its modules in one of two symbols (spec
relax-vm.md section 1):

  __tvm_dev_mblob (TVM <= 0.20):   u64 nbytes, u64 count, count x (str key,
                                   payload); the executable is the entry
                                   "relax.VMExecutable"
  __tvm_ffi__library_bin (>= 0.21): u64 nbytes, vec<u64> indptr,
                                   vec<u64> child, then str key for each
                                   module, followed by its payload unless
                                   the key is "_lib" (the TVM v0.26
                                   libraries write "_lib" after the
                                   executable)

In both the executable's payload is u64 len + len bytes; OUT.bin gets those
len bytes (what ferry_relax_exec_parse takes).  Standard library only."""
import struct
import sys


def symbol_bytes(elf, wanted):
    """(file bytes of) the ELF64 little-endian symbol named wanted."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise SystemExit("not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize)
                for i in range(shnum)]
    for sh in sections:
        if sh[1] not in (2, 11):  # SHT_SYMTAB, SHT_DYNSYM
            continue
        strtab = sections[sh[6]]
        for off in range(sh[4], sh[4] + sh[5], 24):
            name, _info, _other, _shndx, value, size = struct.unpack_from("<IBBHQQ", elf, off)
            start = strtab[4] + name
            end = elf.index(b"\0", start)
            if elf[start:end] != wanted:
                continue
            for s in sections:  # virtual address -> file offset
                if s[1] != 8 and s[3] <= value < s[3] + s[5]:
                    fo = s[4] + value - s[3]
                    if size == 0:  # take all up to the section's end
                        size = s[3] + s[5] - value
                    return elf[fo:fo + size]
    return None


def read_str(b, pos):
    n, = struct.unpack_from("<Q", b, pos)
    return b[pos + 8:pos + 8 + n], pos + 8 + n


def executable(elf):
    blob = symbol_bytes(elf, b"__tvm_dev_mblob")
    if blob is not None:
        pos = 16  # nbytes, count
        count, = struct.unpack_from("<Q", blob, 8)
        for _ in range(count):
            key, pos = read_str(blob, pos)
            if key == b"relax.VMExecutable":
                return read_str(blob, pos)[0]
            if key != b"_lib":
                raise SystemExit("module %r before the executable" % key)
        raise SystemExit("no relax.VMExecutable in __tvm_dev_mblob")
    blob = symbol_bytes(elf, b"__tvm_ffi__library_bin")
    if blob is None:
        raise SystemExit("neither __tvm_dev_mblob nor __tvm_ffi__library_bin")
    pos = 8
    for _ in range(2):  # indptr, child
        n, = struct.unpack_from("<Q", blob, pos)
        pos += 8 + 8 * n
    while pos + 8 <= len(blob):
        key, pos = read_str(blob, pos)
        if key == b"_lib":  # the kernel library: a bare key, no payload
            continue
        payload, pos = read_str(blob, pos)
        if key == b"relax.VMExecutable":
            return payload
    raise SystemExit("no relax.VMExecutable in __tvm_ffi__library_bin")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], "rb") as f:
        elf = f.read()
    with open(sys.argv[2], "wb") as f:
        f.write(executable(elf))


if __name__ == "__main__":
    main()
