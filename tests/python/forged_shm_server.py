#!/usr/bin/env python3
"""A hostile pipe server written from docs/protocol.md (sections 3 and 13), using only the
standard library: it accepts the handshake of a client that asks for shared memory (its
integers big-endian), then offers it a forged data path (the region's are little-endian).

Usage: forged_shm_server.py SOCKET_PATH CASE

It binds SOCKET_PATH, prints "READY", and answers every client with CASE:

  valid            a correct region and doorbell (the control case: the client must take it)
  scribble         a correct region, then a ring 0 `head` far past the capacity, rung
  unsealed         a correct region, not sealed at all
  partly_sealed    sealed against shrinking only
  write_sealed     sealed as asked and also against writing (it cannot be mapped writable)
  too_small        sealed, 4096 bytes: smaller than any header and two rings
  too_large        sealed, larger than the largest rings (sparse)
  size_mismatch    sealed, a header for rings of 4096 in a region for rings of 8192
  bad_magic        a header that starts "XXXX"
  bad_version      layout version 2
  bad_capacity     rings of 6144 bytes (not a power of two) in a region that fits them
  plain_file       a regular file (not a memfd) with a correct header and size
  pipe             the read end of a pipe instead of the region
  pipe_bell        a correct region, and a pipe instead of the doorbell socket
  no_fds           the shared-memory record with no descriptors at all
  one_fd           the region only
  too_many_fds     the region, the doorbell and one more
  fds_with_socket  the socket path record (00) with two descriptors
  bad_record       a data path record with the wrong magic
  silence          the accepting response, then nothing (the client must time out)

The memory files are named "forged-CASE", so a test can look for them in its own
/proc/self/fd and /proc/self/maps.
"""

import fcntl
import os
import socket
import struct
import sys
import tempfile
import threading
import time

MAGIC = b"PWIR"
DATA_PATH_MAGIC = b"PWDP"
REGION_MAGIC = b"PWSR"
DATA_START = 4096
MAX_CAPACITY = 1 << 30
MAX_MESSAGE = 1 << 20

F_SEAL_SEAL = getattr(fcntl, "F_SEAL_SEAL", 0x0001)
F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x0002)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 0x0004)
F_SEAL_WRITE = getattr(fcntl, "F_SEAL_WRITE", 0x0008)
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
SIZE_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the client closed during the handshake")
        data += chunk
    return data


def header(capacity, magic=REGION_MAGIC, version=1):
    return magic + struct.pack("<III", version, capacity, 0)


def memfd(case, size, head, seals):
    fd = os.memfd_create("forged-" + case, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    os.pwrite(fd, head, 0)
    if seals:
        fcntl.fcntl(fd, F_ADD_SEALS, seals)
    return fd


def region(case):
    """The descriptors (and anything to keep open) the case passes."""
    cap = 4096
    size = DATA_START + 2 * cap
    good = header(cap)
    if case in ("valid", "scribble", "pipe_bell", "one_fd", "too_many_fds", "fds_with_socket"):
        return memfd(case, size, good, SIZE_SEALS)
    if case == "unsealed":
        return memfd(case, size, good, 0)
    if case == "partly_sealed":
        return memfd(case, size, good, F_SEAL_SHRINK)
    if case == "write_sealed":
        return memfd(case, size, good, SIZE_SEALS | F_SEAL_WRITE)
    if case == "too_small":
        return memfd(case, 4096, good, SIZE_SEALS)
    if case == "too_large":
        return memfd(case, DATA_START + 2 * MAX_CAPACITY + 4096, header(MAX_CAPACITY), SIZE_SEALS)
    if case == "size_mismatch":
        return memfd(case, DATA_START + 2 * 8192, good, SIZE_SEALS)
    if case == "bad_magic":
        return memfd(case, size, header(cap, magic=b"XXXX"), SIZE_SEALS)
    if case == "bad_version":
        return memfd(case, size, header(cap, version=2), SIZE_SEALS)
    if case == "bad_capacity":
        return memfd(case, DATA_START + 2 * 6144, header(6144), SIZE_SEALS)
    if case == "plain_file":
        fd, path = tempfile.mkstemp(prefix="forged-plain_file-")
        os.unlink(path)
        os.ftruncate(fd, size)
        os.pwrite(fd, good, 0)
        return fd
    if case == "pipe":
        r, w = os.pipe()
        KEEP.append(w)
        return r
    raise SystemExit("unknown case " + case)


KEEP = []


def serve(conn, case):
    fixed = read_exactly(conn, 10)
    if fixed[:4] != MAGIC:
        raise SystemExit("not a procwire request")
    access = fixed[5]
    name_len = struct.unpack(">H", fixed[8:10])[0]
    read_exactly(conn, name_len)
    shared_memory = fixed[7] & 1
    response = MAGIC + bytes([1, 0, 2, access]) + struct.pack(">IHHH", MAX_MESSAGE, 1, 0, 0)
    conn.sendall(response)
    if not shared_memory:
        return
    if case == "silence":
        time.sleep(60)
        return
    if case == "bad_record":
        conn.sendall(b"PWXX\x01\x00\x00\x00")
        return
    if case == "no_fds":
        conn.sendall(DATA_PATH_MAGIC + b"\x01\x00\x00\x00")
        return
    memory = region(case)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    KEEP.extend([memory, ours, theirs])
    record = DATA_PATH_MAGIC + b"\x01\x00\x00\x00"
    if case == "one_fd":
        fds = [memory]
    elif case == "too_many_fds":
        fds = [memory, theirs.fileno(), ours.fileno()]
    elif case == "fds_with_socket":
        record = DATA_PATH_MAGIC + b"\x00\x00\x00\x00"
        fds = [memory, theirs.fileno()]
    elif case == "pipe_bell":
        r, w = os.pipe()
        KEEP.append(w)
        fds = [memory, r]
    else:
        fds = [memory, theirs.fileno()]
    socket.send_fds(conn, [record], fds)
    if case == "scribble":
        # Ring 0 (server to client): head (offset 64 + 0) far past the capacity, then a ring
        # on the second doorbell.
        os.pwrite(memory, struct.pack("<Q", 1 << 40), 64)
        ours.send(b"\x01")
    time.sleep(60)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, case = sys.argv[1], sys.argv[2]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    parent = os.getppid()

    def exit_with_parent():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    print("READY", flush=True)
    while True:
        conn, _ = listener.accept()
        KEEP.append(conn)
        threading.Thread(target=serve, args=(conn, case), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
