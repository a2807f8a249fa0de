"""procwire: named pipes, mailslots, file mappings and named mutexes, semaphores and events
on Linux, from Python.

Every blocking call releases the GIL while it waits; timeouts are float seconds, None
waiting as long as it takes. Failures raise a subclass of procwire.Error named after the
failure's kind (NotFound, AccessDenied, Busy, Timeout, ...).
"""

from ._procwire import *  # noqa: F401,F403
from ._procwire import (  # noqa: F401
    Error, InvalidName, NotFound, AlreadyExists, UntrustedServer, Busy, AccessDenied,
    WrongKind, ModeMismatch, MessageTooLarge, Timeout, Disconnected, NotPermitted,
    WrongFrame, BadHandle, ProtocolError, IoError, Full, BufferTooSmall, InvalidSize,
    OutOfRange, Misaligned, Corrupt, InvalidArgument, Abandoned, WouldDeadlock, OverRelease,
    PipeServer, PipeConnection, Mailslot, MailslotWriter, MailslotInfo, Mapping,
    Mutex, Semaphore, Event,
)
