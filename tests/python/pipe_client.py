#!/usr/bin/env python3
"""A procwire pipe client written from docs/protocol.md, using only the standard library.

Usage: pipe_client.py SOCKET_OR_NAME MODE

SOCKET_OR_NAME is a socket path (anything with a `/`) or a pipe name in the Local
namespace (`HelloWorld` or `Local\\HelloWorld`), resolved as docs/protocol.md section 2.2
says. MODE is one of:

  message  handshake in message read mode, send b"hello", b"" and 100000 bytes of b"x",
           expect each echoed back exactly (the server runs with --echo), then send a close
           frame and expect the server to close; prints "OK message"
  byte     handshake in byte read mode, send b"stream-data" and read until it is back,
           then half-close and expect end of stream; prints "OK byte"
  garbage  send b"GET / HTTP/1.1\\r\\n\\r\\n" instead of a request, print the server's
           answer ("status=N detail=..."), and expect status 6 (BadRequest) with a detail
           mentioning the magic; prints "OK garbage"

Exits 0 on success, 1 with a "FAIL: ..." line on stderr otherwise, 2 on bad usage.
"""

import os
import socket
import struct
import sys

MAGIC = b"PWIR"
VERSION = 1
ACCESS_DUPLEX = 3
MODE_BYTE = 1
MODE_MESSAGE = 2
REQUEST_HEADER_LEN = 10
RESPONSE_HEADER_LEN = 18
MAX_DETAIL_LEN = 1024
CLOSE_BIT = 0x80000000
MAX_CLOSE_REASON = 1024
STATUS_NAMES = {
    0: "Ok",
    1: "NotFound",
    2: "Busy",
    3: "AccessDenied",
    4: "ModeMismatch",
    5: "UnsupportedVersion",
    6: "BadRequest",
}
TIMEOUT_SECONDS = 10.0


class Failure(Exception):
    """What went wrong, in words."""


def local_root():
    """The Local namespace's root directory (docs/protocol.md section 2.2)."""
    uid = os.geteuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        try:
            st = os.stat(runtime)  # follows symbolic links, as the server does
        except OSError:
            st = None
        if st is not None and os.path.isdir(runtime) and st.st_uid == uid:
            return os.path.join(runtime, "procwire")
    tmp = os.environ["TMPDIR"] if "TMPDIR" in os.environ else "/tmp"
    return os.path.join(tmp, "procwire-%d" % uid)


def resolve(arg):
    """Returns (socket path, object name to send in the handshake)."""
    if "/" in arg:
        return arg, os.path.basename(arg)
    name = arg
    if name.lower().startswith("local\\"):
        name = name[len("local\\"):]
    if not name or "\\" in name:
        raise Failure("%r is not a Local pipe name or a socket path" % arg)
    return os.path.join(local_root(), "pipe", name), name


def recv_exact(sock, n, what):
    """Reads exactly n bytes: never more, so nothing after them is consumed."""
    chunks = []
    have = 0
    while have < n:
        chunk = sock.recv(min(n - have, 1 << 20))
        if not chunk:
            raise Failure(
                "the server closed the connection after %d of %d bytes of %s" % (have, n, what)
            )
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def encode_request(name, mode):
    name_bytes = name.encode("utf-8")
    if not 1 <= len(name_bytes) <= 255:
        raise Failure("pipe name must be 1 to 255 bytes of UTF-8, not %d" % len(name_bytes))
    return (
        MAGIC
        + struct.pack(">BBBBH", VERSION, ACCESS_DUPLEX, mode, 0, len(name_bytes))
        + name_bytes
    )


def read_response(sock):
    """Reads one response; returns a dict of its fields. Checks the layout, not the status."""
    head = recv_exact(sock, RESPONSE_HEADER_LEN, "the response")
    if head[:4] != MAGIC:
        raise Failure("bad response magic %r (expected %r)" % (head[:4], MAGIC))
    version, status, pipe_type, access, max_message, instances, max_instances, detail_len = (
        struct.unpack(">BBBBIHHH", head[4:])
    )
    if version != VERSION:
        raise Failure("the server speaks protocol version %d, not %d" % (version, VERSION))
    if status not in STATUS_NAMES:
        raise Failure("unknown status %d in the response" % status)
    if pipe_type not in (MODE_BYTE, MODE_MESSAGE):
        raise Failure("bad pipe type %d in the response" % pipe_type)
    if access > 3 or (status == 0) != (access != 0):
        raise Failure("bad granted access %d for status %d" % (access, status))
    if detail_len > MAX_DETAIL_LEN:
        raise Failure("detail length %d is over %d" % (detail_len, MAX_DETAIL_LEN))
    detail = recv_exact(sock, detail_len, "the response's detail").decode("utf-8")
    return {
        "status": status,
        "pipe_type": pipe_type,
        "access": access,
        "max_message": max_message,
        "instances": instances,
        "max_instances": max_instances,
        "detail": detail,
    }


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_SECONDS)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise Failure("cannot connect to %s: %s" % (path, e))
    return sock


def open_pipe(path, name, mode):
    """Connects and runs the handshake; returns (socket, response) once admitted."""
    sock = connect(path)
    sock.sendall(encode_request(name, mode))
    response = read_response(sock)
    if response["status"] != 0:
        sock.close()
        raise Failure(
            "the server refused the connection: status %d (%s): %s"
            % (response["status"], STATUS_NAMES[response["status"]], response["detail"])
        )
    if response["access"] != ACCESS_DUPLEX:
        sock.close()
        raise Failure("asked for duplex access, granted %d" % response["access"])
    return sock, response


def send_message(sock, payload, max_message):
    if len(payload) > max_message:
        raise Failure("message of %d bytes is over the maximum of %d" % (len(payload), max_message))
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def recv_message(sock, max_message):
    """Reads one message frame; a close frame becomes a Failure carrying its reason."""
    (word,) = struct.unpack(">I", recv_exact(sock, 4, "a frame header"))
    if word & CLOSE_BIT:
        length = word & ~CLOSE_BIT
        if length > MAX_CLOSE_REASON:
            raise Failure("close frame announces a %d-byte reason (over %d)" % (length, MAX_CLOSE_REASON))
        reason = recv_exact(sock, length, "a close reason").decode("utf-8", "replace")
        raise Failure("the server closed the pipe: %s" % reason)
    if word > max_message:
        raise Failure("the server announced a %d-byte message, over the maximum %d" % (word, max_message))
    return recv_exact(sock, word, "a message of %d bytes" % word)


def expect_end(sock, allow_close_frame):
    """After our half-close: expect end of stream (or, on message pipes, a close frame)."""
    rest = sock.recv(4)
    if not rest:
        return
    if allow_close_frame and len(rest) >= 1 and rest[0] & 0x80:
        return
    raise Failure("expected the server to close, got %r" % rest)


def run_message(path, name):
    sock, response = open_pipe(path, name, MODE_MESSAGE)
    try:
        if response["pipe_type"] != MODE_MESSAGE:
            raise Failure("asked for message mode on a pipe of type %d" % response["pipe_type"])
        max_message = response["max_message"]
        for payload in (b"hello", b"", b"x" * 100000):
            send_message(sock, payload, max_message)
            echoed = recv_message(sock, max_message)
            if echoed != payload:
                raise Failure(
                    "sent %d bytes, got %d bytes back (%r...)"
                    % (len(payload), len(echoed), echoed[:20])
                )
        reason = b"done"
        sock.sendall(struct.pack(">I", CLOSE_BIT | len(reason)) + reason)
        sock.shutdown(socket.SHUT_WR)
        expect_end(sock, allow_close_frame=True)
    finally:
        sock.close()
    print("OK message")


def run_byte(path, name):
    sock, response = open_pipe(path, name, MODE_BYTE)
    try:
        if response["pipe_type"] != MODE_BYTE:
            raise Failure("expected a byte-type pipe, the server has type %d" % response["pipe_type"])
        data = b"stream-data"
        sock.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = sock.recv(len(data) - len(got))
            if not chunk:
                raise Failure("the server closed the pipe after echoing %r" % got)
            got += chunk
        if got != data:
            raise Failure("sent %r, got %r back" % (data, got))
        sock.shutdown(socket.SHUT_WR)
        expect_end(sock, allow_close_frame=False)
    finally:
        sock.close()
    print("OK byte")


def run_garbage(path):
    sock = connect(path)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        response = read_response(sock)
    finally:
        sock.close()
    print("status=%d detail=%s" % (response["status"], response["detail"]))
    if response["status"] != 6:
        raise Failure("expected status 6 (BadRequest), got %d" % response["status"])
    if "magic" not in response["detail"]:
        raise Failure("the detail does not mention the magic: %r" % response["detail"])
    print("OK garbage")


def main(argv):
    if len(argv) != 3 or argv[2] not in ("message", "byte", "garbage"):
        sys.stderr.write("usage: %s SOCKET_OR_NAME message|byte|garbage\n" % argv[0])
        return 2
    try:
        path, name = resolve(argv[1])
        if argv[2] == "message":
            run_message(path, name)
        elif argv[2] == "byte":
            run_byte(path, name)
        else:
            run_garbage(path)
    except Failure as e:
        sys.stderr.write("FAIL: %s\n" % e)
        return 1
    except socket.timeout:
        sys.stderr.write("FAIL: no answer from the server in %.0f s\n" % TIMEOUT_SECONDS)
        return 1
    except (OSError, UnicodeDecodeError) as e:
        sys.stderr.write("FAIL: %s\n" % e)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
