"""The procwire package against itself, in one process, across threads and with a second
Python process, and the failures as exceptions."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid

import pytest

import procwire


def unique(tag):
    return f"t-py-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def test_pipe_message_round_trip_and_recv_into():
    name = rf"\\.\pipe\{unique('pipe')}"
    with procwire.PipeServer(name, max_message_size=64) as server:
        def serve():
            with server.accept(timeout=10.0) as conn:
                conn.send(b"pong:" + conn.recv(timeout=10.0))
                assert conn.peer_credentials[0] == os.getpid()
        t = threading.Thread(target=serve)
        t.start()
        with procwire.PipeConnection.open(name, mode="message") as client:
            with pytest.raises(procwire.Timeout):
                client.recv(timeout=0.0)
            client.send(memoryview(b"ping"))
            buf = bytearray(3)
            parts = []
            while True:
                n, complete = client.recv_into(buf)
                parts.append(bytes(buf[:n]))
                if complete:
                    break
            assert b"".join(parts) == b"pong:ping"
            with pytest.raises(procwire.MessageTooLarge):
                client.send(b"x" * 65)
        t.join()


def test_pipe_send_and_recv_into_take_any_buffer():
    """Every kind of buffer goes through send and recv_into: bytes, bytearray, memoryview
    slices, array.array, a strided memoryview (copied), small and large (over the stack
    copy); a read-only or non-contiguous target is refused with BufferError."""
    import array
    name = rf"\\.\pipe\{unique('buffers')}"
    big = bytes(range(256)) * 40
    sent = [b"bytes", bytearray(b"bytearray"), memoryview(b"0123456789")[2:7],
            array.array("i", [1, 2, 3]), memoryview(b"abcdefgh")[::2], big,
            memoryview(bytearray(big))[1:]]
    with procwire.PipeServer(name) as server:
        def serve():
            with server.accept(timeout=10.0) as conn:
                for _ in sent:
                    conn.send(conn.recv(timeout=10.0))
        t = threading.Thread(target=serve)
        t.start()
        with procwire.PipeConnection.open(name, mode="message") as client:
            for data in sent:
                client.send(data)
                buf = bytearray(len(big) + 1)
                n, complete = client.recv_into(memoryview(buf)[1:])
                assert complete and bytes(buf[1:1 + n]) == memoryview(data).tobytes()
            with pytest.raises(BufferError, match="read-only"):
                client.recv_into(b"immutable")
            with pytest.raises(BufferError, match="not contiguous"):
                client.recv_into(memoryview(bytearray(8))[::2])
            with pytest.raises(TypeError):
                client.send(42)
        t.join()


def test_pipe_byte_mode_and_asyncio():
    name = rf"\\.\pipe\{unique('bytes')}"
    server = procwire.PipeServer(name, mode="byte")

    async def main():
        client = procwire.PipeConnection.open(name, mode="byte")
        conn = await server.aaccept(10.0)
        assert client.write(b"stream") == 6
        client.finish_sending()
        got = b""
        while True:
            chunk = conn.read(100)
            if not chunk:
                break
            got += chunk
        assert got == b"stream"
        conn.close()
        client.close()

    asyncio.run(main())
    server.close()


def test_async_recv():
    name = rf"\\.\pipe\{unique('async')}"
    with procwire.PipeServer(name) as server:
        client = procwire.PipeConnection.open(name, mode="message")
        conn = server.accept(10.0)

        async def main():
            pending = asyncio.ensure_future(conn.arecv(10.0))
            await asyncio.sleep(0.05)
            client.send(b"later")
            return await pending

        assert asyncio.run(main()) == b"later"


def test_a_cancelled_arecv_takes_nothing():
    """Receives cancelled before, while and after a message arrives: every message is
    still received once, in order, and a timed-out arecv raises Timeout."""
    name = rf"\\.\pipe\{unique('cancel')}"
    with procwire.PipeServer(name) as server:
        client = procwire.PipeConnection.open(name, mode="message")
        conn = server.accept(10.0)

        async def main():
            got = []
            for i in range(40):
                task = asyncio.ensure_future(conn.arecv(10.0))
                await asyncio.sleep(0.002 * (i % 4))
                client.send(b"m%d" % i)
                await asyncio.sleep(0.001 * (i % 3))
                task.cancel()
                try:
                    got.append(await task)
                except asyncio.CancelledError:
                    pass
            while len(got) < 40:
                got.append(await conn.arecv(5.0))
            with pytest.raises(procwire.Timeout):
                await conn.arecv(0.1)
            return got

        assert asyncio.run(main()) == [b"m%d" % i for i in range(40)]
        assert conn.try_recv() is None
        client.close()
        conn.close()


def test_a_cancelled_aread_takes_nothing_and_info_counts_what_it_kept():
    slot = procwire.Mailslot(rf"\\.\mailslot\{unique('cancel')}")
    with procwire.MailslotWriter(slot.name) as writer:

        async def main():
            got = []
            for i in range(40):
                task = asyncio.ensure_future(slot.aread(10.0))
                await asyncio.sleep(0.002 * (i % 4))
                writer.write(b"n%d" % i)
                await asyncio.sleep(0.001 * (i % 3))
                task.cancel()
                try:
                    got.append(await task)
                except asyncio.CancelledError:
                    pass
            # Let the last slice finish: what it read is counted as waiting.
            await asyncio.sleep(0.2)
            assert slot.info().waiting == 40 - len(got)
            while len(got) < 40:
                got.append(await slot.aread(5.0))
            return got

        assert asyncio.run(main()) == [b"n%d" % i for i in range(40)]
        assert slot.info().waiting == 0
    slot.close()


def test_a_mailslot_closes_while_an_aread_waits():
    """close while an aread waits (it used to raise "Already borrowed"): the aread ends
    with NotPermitted once the slice under way is over, and the name is gone."""
    slot = procwire.Mailslot(rf"\\.\mailslot\{unique('close')}")
    name = slot.name

    async def main():
        pending = asyncio.ensure_future(slot.aread(10.0))
        await asyncio.sleep(0.2)
        slot.close()
        with pytest.raises(procwire.NotPermitted, match="closed"):
            await asyncio.wait_for(pending, 5.0)

    asyncio.run(main())
    with pytest.raises(procwire.NotFound):
        procwire.MailslotWriter(name, timeout=0.5)


def test_errors_are_exceptions_per_kind():
    with pytest.raises(procwire.NotFound) as e:
        procwire.PipeConnection.open(unique("missing"), timeout=0.5)
    assert "no pipe named" in str(e.value)
    assert isinstance(e.value, procwire.Error)
    with pytest.raises(procwire.InvalidName):
        procwire.Mapping.create("bad\\name\\x", 10)
    slot = procwire.Mailslot(rf"\\.\mailslot\{unique('small')}", max_message_size=16)
    with procwire.MailslotWriter(slot.name) as w:
        with pytest.raises(procwire.MessageTooLarge):
            w.write(b"y" * 100)
    slot.close()
    name = unique("busy")
    with procwire.PipeServer(name, max_instances=1) as server:
        first = procwire.PipeConnection.open(name)
        with pytest.raises(procwire.Busy):
            procwire.PipeConnection.open(name, timeout=0.3)
        first.close()
        server.close()
    kind = unique("kind")
    event = procwire.Event.create(kind)
    with pytest.raises(procwire.WrongKind):
        procwire.Mutex.open(kind)
    event.close()


def test_mailslot_info_and_async_read():
    name = rf"\\.\mailslot\{unique('slot')}"
    with procwire.Mailslot(name, read_timeout=0.0) as slot:
        with procwire.MailslotWriter(name) as w:
            w.write(b"one")
            w.write(bytearray(b"two!"))
        info = slot.info()
        assert (info.waiting, info.next_size, info.read_timeout) == (2, 3, 0.0)
        with pytest.raises(procwire.BufferTooSmall):
            slot.read_into(bytearray(1))
        buf = bytearray(10)
        assert slot.read_into(buf) == 3 and buf[:3] == b"one"
        async def main():
            return await slot.aread(5.0)

        assert asyncio.run(main()) == b"two!"
        assert slot.try_read() is None
        with pytest.raises(procwire.Timeout):
            slot.read()


def test_mapping_memoryview_and_copies(tmp_path):
    name = unique("map")
    with procwire.Mapping.create(name, 4096) as m:
        view = m.memoryview()
        view[0:5] = b"hello"
        reader = procwire.Mapping.open(name)
        assert reader.read(0, 5) == b"hello"
        assert memoryview(reader).readonly
        with pytest.raises(procwire.NotPermitted):
            reader.write(0, b"x")
        with pytest.raises(procwire.OutOfRange):
            m.write(4095, b"xy")
        with pytest.raises(BufferError):
            m.close()
        view.release()
        reader.close()
    path = tmp_path / "backing.bin"
    with procwire.Mapping.create(unique("file"), 100, file=path) as f:
        with pytest.raises(BufferError):
            memoryview(f)
        f.write(10, b"file")
        f.flush()
    assert path.read_bytes()[10:14] == b"file"


def test_sync_objects():
    name = unique("mutex")
    mutex = procwire.Mutex.create(name)
    with mutex:
        other = procwire.Mutex.open(name)
        result = []
        t = threading.Thread(target=lambda: result.append(other.acquire(timeout=0.05)))
        t.start()
        t.join()
        assert result == [False]
    assert mutex.acquire(1.0)
    with pytest.raises(procwire.WouldDeadlock):
        mutex.acquire(1.0)
    mutex.release()

    sem = procwire.Semaphore.create(unique("sem"), 1, 2)
    with sem:
        assert not sem.acquire(0.01)
    assert sem.release() == 1 and sem.count == 2
    with pytest.raises(procwire.OverRelease):
        sem.release()

    event = procwire.Event.create(unique("event"), manual_reset=True)
    assert not event.wait(0.01)
    event.set()
    assert event.is_set() and event.wait()
    event.reset()
    assert not event.is_set()


_RECEIVER = r"""
import sys, procwire
conn = procwire.PipeConnection.open(sys.argv[1])
# The next frame is a handle: a plain receive says so and takes nothing.
try:
    conn.recv(10.0)
    print("recv took a handle frame")
except procwire.WrongFrame as e:
    print("recv: WrongFrame", "recv_handle" in str(e))
mapping = conn.recv_handle(10.0)
print("mapping:", type(mapping).__name__, mapping.name == sys.argv[2], mapping.writable,
      len(mapping), mapping.read(0, 15))
mapping.write(100, b"from the receiver")
read_only = conn.recv_handle(10.0)
try:
    read_only.write(0, b"x")
    print("read-only: written")
except procwire.NotPermitted:
    print("read-only:", read_only.writable, read_only.read(0, 15))
for what in ("file object", "fd"):
    f = conn.recv_handle(10.0)
    print(what + ":", f.mode, f.read())
    try:
        f.write(b"no")
        print(what, "written")
    except OSError:
        print(what, "refuses writes")
    f.close()
echo = conn.recv_handle(10.0)
echo.send(b"hello through a passed pipe")
print("echo:", type(echo).__name__, echo.recv(10.0))
echo.close()
event = conn.recv_handle(10.0)
print("event:", type(event).__name__)
event.set()
print("done:", conn.recv(10.0))
"""


def test_handles_pass_to_another_process(tmp_path):
    """A mapping (read-write, then read-only), a file (as a file object and as an int
    descriptor, read-only), a pipe connection and an event, passed to a second Python
    process, which uses each; the first sees what it did."""
    tag = unique("pass")
    pipe_name = rf"\\.\pipe\{tag}"
    mapping_name = rf"Local\{tag}-map"
    path = tmp_path / "passed.txt"
    path.write_bytes(b"file contents")
    echoed = []
    with procwire.PipeServer(pipe_name) as server, \
            procwire.PipeServer(rf"\\.\pipe\{tag}-echo") as echo_server, \
            procwire.Mapping.create(mapping_name, 4096) as mapping:
        mapping.write(0, b"from the sender")
        event = procwire.Event.create(rf"Local\{tag}-event", manual_reset=True)

        def echo():
            with echo_server.accept(timeout=30.0) as conn:
                opener = conn.peer_credentials[0]
                message = conn.recv(timeout=30.0)
                echoed.append((opener, message))
                conn.send(b"echo: " + message)
        t = threading.Thread(target=echo)
        t.start()
        to_echo = procwire.PipeConnection.open(echo_server.name)
        child = subprocess.Popen([sys.executable, "-c", _RECEIVER, pipe_name, mapping_name],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with server.accept(timeout=30.0) as conn:
                # Objects that cannot be passed are refused here, before anything is sent.
                with pytest.raises(ValueError, match="cannot pass itself"):
                    conn.send_handle(conn)
                with pytest.raises(TypeError, match="cannot pass a str"):
                    conn.send_handle("a name")
                with pytest.raises(ValueError):
                    conn.send_handle(mapping, access="everything")
                conn.send_handle(mapping)
                conn.send_handle(mapping, access="read")
                with open(path, "rb") as f:
                    conn.send_handle(f)
                fd = os.open(path, os.O_RDONLY)
                try:
                    conn.send_handle(fd)
                finally:
                    os.close(fd)
                conn.send_handle(to_echo)
                # Passed: the receiver alone talks on it now.
                to_echo.close()
                conn.send_handle(event)
                assert event.wait(30.0), "the receiver set the event"
                assert mapping.read(100, 17) == b"from the receiver"
                conn.send(b"bye")
                out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        t.join()
    assert child.returncode == 0, out + err
    assert out.splitlines() == [
        "recv: WrongFrame True",
        "mapping: Mapping True True 4096 b'from the sender'",
        "read-only: False b'from the sender'",
        "file object: rb b'file contents'",
        "file object refuses writes",
        "fd: rb b'file contents'",
        "fd refuses writes",
        "echo: PipeConnection b'echo: hello through a passed pipe'",
        "event: Event",
        "done: b'bye'",
    ], out + err
    # The echo server saw this process open the connection and the child talk on it.
    assert echoed == [(os.getpid(), b"hello through a passed pipe")]


def test_a_recv_handle_of_a_message_and_a_shared_memory_connection_are_errors():
    name = rf"\\.\pipe\{unique('frames')}"
    with procwire.PipeServer(name, shared_memory=True) as server:
        client = procwire.PipeConnection.open(name)
        conn = server.accept(10.0)
        client.send(b"a message")
        with pytest.raises(procwire.WrongFrame):
            conn.recv_handle(10.0)
        assert conn.recv(10.0) == b"a message"
        with pytest.raises(procwire.Timeout):
            conn.recv_handle(0.05)
        shm_client = procwire.PipeConnection.open(name, shared_memory=True)
        shm_conn = server.accept(10.0)
        assert shm_conn.is_shared_memory
        sem = procwire.Semaphore.create(unique("sem"), 0, 1)
        with pytest.raises(procwire.BadHandle, match="shared memory"):
            shm_conn.send_handle(sem)
        for c in (client, conn, shm_client, shm_conn):
            c.close()


def test_send_and_close_while_an_arecv_or_a_recv_is_pending():
    """A send on a connection whose arecv (or blocking recv in another thread) is waiting
    goes out at once; close ends the waiting receive instead of raising."""
    name = rf"\\.\pipe\{unique('busy')}"
    with procwire.PipeServer(name) as server:
        client = procwire.PipeConnection.open(name)
        conn = server.accept(10.0)

        async def main():
            pending = asyncio.ensure_future(conn.arecv(10.0))
            await asyncio.sleep(0.2)  # the executor is inside a slice now
            conn.send(b"while receiving")
            assert client.recv(10.0) == b"while receiving"
            client.send(b"the answer")
            assert await pending == b"the answer"
            pending = asyncio.ensure_future(conn.arecv(10.0))
            await asyncio.sleep(0.2)
            started = asyncio.get_running_loop().time()
            conn.close()
            with pytest.raises((procwire.Disconnected, procwire.NotPermitted)):
                await pending
            assert asyncio.get_running_loop().time() - started < 5.0

        asyncio.run(main())
        with pytest.raises(procwire.NotPermitted, match="closed"):
            conn.send(b"after close")

        # The same with a blocking receive in another thread.
        client2 = procwire.PipeConnection.open(name)
        conn2 = server.accept(10.0)
        got = []

        def receive():
            try:
                got.append(conn2.recv())
            except procwire.Error as e:
                got.append(type(e))
        t = threading.Thread(target=receive)
        t.start()
        conn2.send(b"from the main thread")
        assert client2.recv(10.0) == b"from the main thread"
        conn2.close()
        t.join(10.0)
        assert not t.is_alive() and got in ([procwire.Disconnected], [procwire.NotPermitted])
        client.close()
        client2.close()


def _as_nobody(script):
    """Runs `script` in another Python process as uid/gid 65534, from `/`, with a copy of
    this procwire package that the other user can read; its stdout. Skips when no Python
    of this version is runnable by that user (the running one may sit in a private home,
    as pyenv's under /root does)."""
    nobody = dict(user=65534, group=65534, cwd="/", capture_output=True, text=True,
                  timeout=60)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    interpreter = None
    for candidate in [sys.executable, f"/usr/bin/python{version}", "/usr/bin/python3"]:
        try:
            done = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % "
                                   "sys.version_info[:2])"], **nobody)
        except (PermissionError, FileNotFoundError):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            interpreter = candidate
            break
    if interpreter is None:
        pytest.skip(f"no Python {version} that uid 65534 may run")
    # A fresh directory (mkdtemp: a new name, made 0700, so nothing can be planted in it),
    # opened to others once the copy is in place.
    shared = tempfile.mkdtemp(prefix="procwire-py-", dir="/tmp")
    shutil.copytree(os.path.dirname(procwire.__file__), os.path.join(shared, "procwire"))
    for root, dirs, files in os.walk(shared):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    try:
        done = subprocess.run([interpreter, "-c",
                               f"import sys; sys.path.insert(0, {shared!r})\n" + script],
                              **nobody)
    finally:
        shutil.rmtree(shared)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: runs a child as uid 65534")
def test_another_user_gets_access_denied_and_the_server_goes_on():
    tag = unique("denied")
    pipe_name = rf"Global\{tag}-pipe"
    mapping_name = rf"Global\{tag}-map"
    script = f"""
import procwire
for what, attempt in [
    ("pipe", lambda: procwire.PipeConnection.open(r"{pipe_name}")),
    ("mapping", lambda: procwire.Mapping.open(r"{mapping_name}")),
]:
    try:
        attempt()
        print(what, "opened")
    except procwire.AccessDenied as e:
        print(what, "AccessDenied", e)
"""
    # Owner-only (the default): the other user is refused with AccessDenied, by name.
    with procwire.PipeServer(pipe_name) as server, \
            procwire.Mapping.create(mapping_name, 4096):
        out = _as_nobody(script)
        assert "pipe AccessDenied" in out, out
        assert "mapping AccessDenied" in out, out
        # The server still serves its own user.
        def serve():
            with server.accept(timeout=10.0) as conn:
                conn.send(conn.recv(timeout=10.0))
        t = threading.Thread(target=serve)
        t.start()
        with procwire.PipeConnection.open(pipe_name) as client:
            client.send(b"still here")
            assert client.recv(timeout=10.0) == b"still here"
        t.join()
