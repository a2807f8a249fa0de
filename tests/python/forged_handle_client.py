#!/usr/bin/env python3
"""A hostile client for handle passing, written from docs/protocol.md (sections 3, 5 and
5.2) with Python's standard library only.

Usage: forged_handle_client.py SOCKET_PATH PIPE_NAME SCRATCH_DIR

Connects to a message-type pipe, then sends, in this order and without waiting:

  1. a handle frame announcing a mapping, with no descriptor;
  2. the message b"usable-1";
  3. a mapping announced, a FIFO passed;
  4. a mapping announced, a socket passed;
  5. a pipe connection announced, a regular file passed;
  6. a read-write mapping announced, a read-only file passed;
  7. a record of an unknown kind, with a regular file;
  8. the message b"stray" with a descriptor attached (not a handle);
  9. a handle frame announcing a mapping, with no descriptor (the stray one is not its);
 10. the message b"end".

Prints "SOCKET <inode>" for the socket it passed and "SENT" when all is out, then waits for
the server to close the connection. Every file it passes is named forged-handle-*.
"""

import os
import socket
import struct
import sys

MAGIC = b"PWIR"
VERSION = 1
HANDLE_BITS = 0xC0000000
KIND_MAPPING, KIND_FILE, KIND_PIPE = 1, 2, 3


def handle_frame(kind, access, name, size=0, pipe=(0, 0, 0, 0)):
    name = name.encode("utf-8")
    pipe_type, read_mode, max_message, flags = pipe
    record = (
        bytes([1, kind, access, 1])
        + struct.pack(">Q", size)
        + bytes([pipe_type, read_mode])
        + struct.pack(">I", max_message)
        + bytes([flags])
        + struct.pack(">H", len(name))
        + name
    )
    return struct.pack(">I", HANDLE_BITS | len(record)) + record


def message(payload):
    return struct.pack(">I", len(payload)) + payload


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SystemExit("the server closed the connection during the handshake")
        data += chunk
    return data


def main():
    path, name, scratch = sys.argv[1:4]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    name_bytes = name.encode("utf-8")
    sock.sendall(MAGIC + struct.pack(">BBBBH", VERSION, 3, 2, 0, len(name_bytes)) + name_bytes)
    head = recv_exact(sock, 18)
    status, detail_len = head[5], struct.unpack(">H", head[16:18])[0]
    detail = recv_exact(sock, detail_len)
    if status != 0:
        raise SystemExit("refused: %r" % detail)

    fifo = os.path.join(scratch, "forged-handle-fifo")
    os.mkfifo(fifo)
    fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    plain = os.path.join(scratch, "forged-handle-file")
    with open(plain, "wb") as f:
        f.write(b"\0" * 8192)
    plain_fd = os.open(plain, os.O_RDONLY)
    ours, theirs = socket.socketpair()
    print("SOCKET %d" % os.fstat(ours.fileno()).st_ino, flush=True)

    sock.sendall(handle_frame(KIND_MAPPING, 3, "forged-none", 4096))
    sock.sendall(message(b"usable-1"))
    socket.send_fds(sock, [handle_frame(KIND_MAPPING, 3, "forged-fifo", 4096)], [fifo_fd])
    socket.send_fds(sock, [handle_frame(KIND_MAPPING, 3, "forged-socket", 4096)], [ours.fileno()])
    socket.send_fds(
        sock, [handle_frame(KIND_PIPE, 3, "forged-pipe", 0, (2, 2, 1024, 0))], [plain_fd]
    )
    socket.send_fds(sock, [handle_frame(KIND_MAPPING, 3, "forged-access", 4096)], [plain_fd])
    bad_kind = bytearray(handle_frame(KIND_FILE, 1, "forged-kind"))
    bad_kind[4 + 1] = 9
    socket.send_fds(sock, [bytes(bad_kind)], [plain_fd])
    socket.send_fds(sock, [message(b"stray")], [plain_fd])
    sock.sendall(handle_frame(KIND_MAPPING, 1, "forged-none-again", 4096))
    sock.sendall(message(b"end"))
    os.close(fifo_fd)
    os.close(plain_fd)
    ours.close()
    theirs.close()
    print("SENT", flush=True)
    while sock.recv(4096):
        pass


if __name__ == "__main__":
    main()
