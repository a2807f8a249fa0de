"""A 64 B round trip between two Python processes: through a procwire pipe, and through a
raw Unix stream socket pair, in the same run (issue 14's target: procwire costs at most
1.1x the raw socket, so that the binding adds nothing Python itself does not cost).

Both cases are Python on both sides and the same code shape: the client sends a
``bytes`` message and receives the echo with ``recv_into`` a reused ``bytearray``; the
echo child (this script again, ``--child``) receives with ``recv_into`` and sends back a
``memoryview`` of what it got.

A run starts both echo children afresh, warms both up, then times batches of round trips
alternating between the two cases (procwire, socket, socket, procwire, ...), so that each
pair of batches lies milliseconds apart and load from elsewhere falls on both alike. The
figure of a run is the median of its batches for each case, and the median of the ratios
of its pairs of batches (procwire over socket). ``--reps`` runs are made in each of two
placements: ``split`` (the client pinned to the first CPU this process may use, the echo
children to the second, with ``os.sched_setaffinity``) and ``same`` (all on the first).
The report gives, per placement and case, the median of the runs and their spread, the
ratio of the medians and the median of the runs' ratios.

Needs only the standard library and the procwire package::

    python3 -m pip install ./bindings/python
    python3 bindings/python/bench/round_trip.py                  # 7 runs, both placements
    python3 bindings/python/bench/round_trip.py --reps 11 --cpus same --size 64

Results are in docs/performance.md.
"""

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid

import procwire


def pin(cpu):
    os.sched_setaffinity(0, {cpu})


# --- the echo child ---


def echo_socket(fd, size):
    sock = socket.socket(fileno=fd)
    buf = bytearray(max(size, 1) * 2)
    view = memoryview(buf)
    print("ready", flush=True)
    while True:
        n = sock.recv_into(buf)
        if n == 0:
            return
        sock.sendall(view[:n])


def echo_procwire(name, size):
    buf = bytearray(max(size, 1) * 2)
    view = memoryview(buf)
    with procwire.PipeServer(name, mode="message") as server:
        print("ready", flush=True)
        with server.accept() as conn:
            try:
                while True:
                    n, _complete = conn.recv_into(buf)
                    conn.send(view[:n])
            except procwire.Disconnected:
                return


# --- the client ---


def start_child(args, server_cpu, pass_fds=()):
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", *args, str(server_cpu)],
        stdout=subprocess.PIPE,
        pass_fds=pass_fds,
    )
    line = child.stdout.readline()
    if line.strip() != b"ready":
        child.kill()
        raise RuntimeError(f"the echo child did not start: {line!r}")
    return child


def stop_child(child):
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def socket_case(size, server_cpu):
    """A socket pair to a fresh echo child: (round_trip, close)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = start_child(["socket", str(theirs.fileno()), str(size)], server_cpu,
                        pass_fds=(theirs.fileno(),))
    theirs.close()
    message = bytes([7]) * size
    answer = bytearray(size + 1)
    view = memoryview(answer)

    def round_trip():
        mine.sendall(message)
        got = mine.recv_into(answer)
        while got < size:
            got += mine.recv_into(view[got:])

    def close():
        mine.close()
        stop_child(child)

    return round_trip, close


def procwire_case(size, server_cpu):
    """A procwire message pipe to a fresh echo child: (round_trip, close)."""
    name = rf"\\.\pipe\procwire-pybench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    child = start_child(["procwire", name, str(size)], server_cpu)
    message = bytes([7]) * size
    answer = bytearray(size + 1)
    conn = procwire.PipeConnection.open(name, mode="message")

    def round_trip():
        conn.send(message)
        got, complete = conn.recv_into(answer)
        if got != size or not complete:
            raise RuntimeError(f"the echo was {got} bytes, not {size}")

    def close():
        conn.close()
        stop_child(child)

    return round_trip, close


def batch(round_trip, per_batch):
    """The ns per round trip of `per_batch` round trips."""
    start = time.perf_counter_ns()
    for _ in range(per_batch):
        round_trip()
    return (time.perf_counter_ns() - start) / per_batch


def run(opts, server_cpu):
    """One run: both cases against fresh echo children, their batches alternating
    (procwire, socket, socket, procwire, ...). Returns the median batch of each and the
    median ratio of the batches paired."""
    cases = {"procwire": procwire_case(opts.size, server_cpu),
             "socket": socket_case(opts.size, server_cpu)}
    try:
        for round_trip, _ in cases.values():
            for _ in range(opts.warmup):
                round_trip()
        figures = {"procwire": [], "socket": []}
        ratios = []
        for b in range(opts.batches):
            order = ["procwire", "socket"] if b % 2 == 0 else ["socket", "procwire"]
            pair = {case: batch(cases[case][0], opts.per_batch) for case in order}
            for case, ns in pair.items():
                figures[case].append(ns)
            ratios.append(pair["procwire"] / pair["socket"])
        return ({case: statistics.median(v) for case, v in figures.items()},
                statistics.median(ratios))
    finally:
        for _, close in cases.values():
            close()


def micros(ns):
    return f"{ns / 1000:.2f} µs"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=7, help="runs per placement")
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--per-batch", type=int, default=2000)
    parser.add_argument("--cpus", choices=["split", "same", "both"], default="both")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "ADDR", "SIZE", "CPU"),
                        help=argparse.SUPPRESS)
    opts = parser.parse_args()

    if opts.child:
        kind, addr, size, cpu = opts.child
        pin(int(cpu))
        if kind == "socket":
            echo_socket(int(addr), int(size))
        else:
            echo_procwire(addr, int(size))
        return 0

    cpus = sorted(os.sched_getaffinity(0))
    placements = ["split", "same"] if opts.cpus == "both" else [opts.cpus]
    print(f"{machine()}; {opts.size} B round trips; {opts.reps} runs, each of "
          f"{opts.batches} batches of {opts.per_batch} per case after {opts.warmup} to warm "
          "up, the cases' batches alternating (procwire, socket, socket, procwire, ...); "
          "the figure of a run is the median of its batches.")
    for placement in placements:
        if placement == "split":
            if len(cpus) < 2:
                print("\nsplit: skipped, this process may use only one CPU")
                continue
            client_cpu, server_cpu = cpus[0], cpus[1]
        else:
            client_cpu = server_cpu = cpus[0]
        pin(client_cpu)
        runs = {"procwire": [], "socket": []}
        ratios = []
        for _ in range(opts.reps):
            medians, ratio = run(opts, server_cpu)
            for case, ns in medians.items():
                runs[case].append(ns)
            ratios.append(ratio)
        os.sched_setaffinity(0, set(cpus))
        print(f"\n{placement}: client on CPU {client_cpu}, echo child on CPU {server_cpu}\n")
        print("| case | median | spread of runs | runs (µs) |")
        print("| --- | --- | --- | --- |")
        for case, label in [("procwire", "procwire pipe"), ("socket", "socket pair (raw)")]:
            values = runs[case]
            print(f"| {label} | {micros(statistics.median(values))} | "
                  f"{micros(min(values))} – {micros(max(values))} | "
                  + " ".join(f"{v / 1000:.2f}" for v in values) + " |")
        ratio = statistics.median(runs["procwire"]) / statistics.median(runs["socket"])
        print(f"\nratio procwire / socket: {ratio:.3f} of the medians; "
              f"{statistics.median(ratios):.3f} the median of the runs' ratios (runs: "
              + " ".join(f"{r:.3f}" for r in ratios) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
