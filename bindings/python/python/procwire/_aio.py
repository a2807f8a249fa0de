"""Cancel-safe asyncio receives for procwire's blocking objects.

A blocking receive cannot be interrupted once it runs on an executor thread, and a
cancelled ``run_in_executor`` future only stops waiting for it: the thread would go on,
take the next message and drop it. So an ``a``-method here waits in short slices (each a
blocking receive with a timeout of at most ``SLICE`` seconds, shielded from cancellation),
and when the awaiting task is cancelled, the slice under way finishes in the background
and whatever it took is handed back to the object, which returns it first on the next
receive: nothing is lost. The next ``a``-receive on the same object waits for that slice
first.

While a slice runs (during an ``arecv``, and up to ``SLICE`` seconds after one is
cancelled) the receiving side of the object is in use by the executor thread. A pipe
connection sends on a handle of its own, so ``send`` (and ``send_handle``, ``write``) from
the loop's thread goes out at once, and ``close`` shuts the connection down, which ends the
slice (the ``arecv`` raises ``Disconnected``, or ``NotPermitted`` once closed). Another
receive from the loop's thread waits for the slice under way (at most ``SLICE`` seconds).
A ``Mailslot`` closed while an ``aread`` waits goes when the slice under way ends; the
``aread`` then raises ``NotPermitted``. Each waiting receive holds one thread of the loop's
default executor.
"""

import asyncio

from ._procwire import Timeout

SLICE = 0.05
"""The longest a single blocking wait runs, in seconds: how long a cancelled receive may
keep its object busy in the background."""


_left_running = {}
"""id(object) -> the slice a cancelled wait on it left running."""


async def take(obj, timeout, what):
    """Awaits ``obj._take_for(slice)`` until it returns something or ``timeout`` seconds
    (None: as long as it takes) pass; raises ``Timeout`` then."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    left_over = _left_running.get(id(obj))
    if left_over is not None and left_over.get_loop() is loop:
        await asyncio.wait([left_over])
    while True:
        left = SLICE if deadline is None else max(0.0, min(SLICE, deadline - loop.time()))
        job = loop.run_in_executor(None, obj._take_for, left)
        try:
            got = await asyncio.shield(job)
        except asyncio.CancelledError:
            _left_running[id(obj)] = job
            job.add_done_callback(lambda done: _give_back(obj, done))
            raise
        if got is not None:
            return got
        if deadline is not None and loop.time() >= deadline:
            raise Timeout(f"{what}: nothing came within {timeout} s")


def _give_back(obj, job):
    """After a cancelled wait: what its last slice took goes back to ``obj``."""
    if _left_running.get(id(obj)) is job:
        del _left_running[id(obj)]
    if job.cancelled() or job.exception() is not None:
        return
    got = job.result()
    if got is not None:
        obj._give_back(got)
