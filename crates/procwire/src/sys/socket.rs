//! Sockets: peer credentials, buffer sizes, waiting with a timeout.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::security::PeerCredentials;

/// The kernel-verified credentials of the process at the other end of a Unix socket.
///
/// # References
/// - [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html), `SO_PEERCRED`
pub(crate) fn peer_credentials(fd: impl AsFd) -> io::Result<PeerCredentials> {
    let cred = rustix::net::sockopt::socket_peercred(fd)?;
    Ok(PeerCredentials {
        pid: cred.pid.as_raw_nonzero().get() as u32,
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
    })
}

/// Whether `fd` is a stream socket (`SO_TYPE` is `SOCK_STREAM`).
///
/// # References
/// - [`socket(7)`](https://man7.org/linux/man-pages/man7/socket.7.html), `SO_TYPE`
pub(crate) fn is_stream_socket(fd: impl AsFd) -> io::Result<bool> {
    Ok(rustix::net::sockopt::socket_type(fd)? == rustix::net::SocketType::STREAM)
}

/// Reads from `fd` into the spare capacity of `buf`, growing its length by what was read.
/// Never zero-fills: the kernel writes the bytes straight into the allocation.
///
/// # References
/// - [`read(2)`](https://man7.org/linux/man-pages/man2/read.2.html)
pub(crate) fn read_into_spare(fd: impl AsFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(buf)) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Receives one datagram if one is queued, without waiting (`MSG_DONTWAIT`), whatever the
/// socket's blocking mode.
///
/// # References
/// - [`recv(2)`](https://man7.org/linux/man-pages/man2/recv.2.html)
pub(crate) fn recv_now(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::net::recv(&fd, &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((n, _)) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Copies what is queued on a stream socket into `buf` without taking it (`MSG_PEEK`) and
/// without waiting (`MSG_DONTWAIT`): `Ok(0)` when nothing is queued (or the peer closed).
///
/// # References
/// - [`recv(2)`](https://man7.org/linux/man-pages/man2/recv.2.html), `MSG_PEEK`
pub(crate) fn peek_now(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    use rustix::net::RecvFlags;
    loop {
        match rustix::net::recv(&fd, &mut *buf, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
            Ok((n, _)) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The bytes queued for reading on a socket (`FIONREAD`).
///
/// # References
/// - [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html), `SIOCINQ`
pub(crate) fn queued(fd: impl AsFd) -> io::Result<usize> {
    Ok(rustix::io::ioctl_fionread(&fd)? as usize)
}

/// Sends `data` with the descriptors `fds` attached (`SCM_RIGHTS`), all at once or not at
/// all (a short send of a few bytes on a fresh socket does not happen; it is an error).
///
/// # References
/// - [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html), `SCM_RIGHTS`
pub(crate) fn send_with_fds(fd: impl AsFd, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    match send_some_with_fds(fd, data, fds)? {
        n if n == data.len() => Ok(()),
        _ => Err(io::ErrorKind::WriteZero.into()),
    }
}

/// Sends what the socket takes of `data` with the descriptors `fds` attached to its first
/// byte (`SCM_RIGHTS`); returns how many bytes went. On a nonblocking socket with no room,
/// `WouldBlock` and nothing sent. Never raises `SIGPIPE`; retries on `EINTR`.
///
/// # References
/// - [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html), `SCM_RIGHTS`
pub(crate) fn send_some_with_fds(
    fd: impl AsFd,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if fds.len() > MAX_PASSED_FDS || !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors",
        ));
    }
    loop {
        match rustix::net::sendmsg(
            &fd,
            &[IoSlice::new(data)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// The most descriptors [`send_with_fds`] sends and [`recv_with_fds`] takes at once.
pub(crate) const MAX_PASSED_FDS: usize = 2;

/// Receives exactly `buf.len()` bytes and the descriptors that came with them (at most
/// [`MAX_PASSED_FDS`]; any received are closed on error). Honours the socket's read timeout.
///
/// # Errors
///
/// `UnexpectedEof` when the peer closed first; `InvalidData` when more descriptors came
/// than fit (the kernel truncated them).
pub(crate) fn recv_with_fds(fd: impl AsFd, buf: &mut [u8]) -> io::Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    let mut have = 0;
    while have < buf.len() {
        let (got, passed) = recv_some_with_fds(&fd, &mut buf[have..])?;
        fds.extend(passed);
        if fds.len() > MAX_PASSED_FDS {
            return Err(too_many_fds());
        }
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        have += got;
    }
    Ok(fds)
}

fn too_many_fds() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the peer passed more descriptors than expected",
    )
}

/// Receives what one `recvmsg` gives (0 at the end of the stream) and the descriptors that
/// came with it (at most [`MAX_PASSED_FDS`], close-on-exec; any received are closed on
/// error). On a stream socket the descriptors belong to the sender's `sendmsg` whose first
/// byte is among those received, and that `sendmsg`'s bytes are the last ones received.
/// Honours the socket's read timeout; retries on `EINTR`.
///
/// # Errors
///
/// `InvalidData` when more descriptors came than fit (the kernel truncated them).
///
/// # References
/// - [`recvmsg(2)`](https://man7.org/linux/man-pages/man2/recvmsg.2.html),
///   [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html), `SCM_RIGHTS`
pub(crate) fn recv_some_with_fds(
    fd: impl AsFd,
    buf: &mut [u8],
) -> io::Result<(usize, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED_FDS))];
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &fd,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        let got = match got {
            Ok(got) => got,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(passed) = message {
                fds.extend(passed);
            }
        }
        if got.flags.contains(ReturnFlags::CTRUNC) || fds.len() > MAX_PASSED_FDS {
            return Err(too_many_fds());
        }
        return Ok((got.bytes, fds));
    }
}

/// Sends what the socket takes at once (`MSG_DONTWAIT`), never raising `SIGPIPE`.
///
/// # References
/// - [`send(2)`](https://man7.org/linux/man-pages/man2/send.2.html)
pub(crate) fn send_now(fd: impl AsFd, data: &[u8]) -> io::Result<usize> {
    let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
    loop {
        match rustix::net::send(&fd, data, flags) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Answers a client that gets no place and is about to be closed, without ever waiting:
/// sends `answer` if the socket takes it at once (a few bytes into an empty buffer do),
/// ends the sending direction, and takes in what the client has already sent (so that
/// closing does not reset the answer away).
///
/// # References
/// - [`send(2)`](https://man7.org/linux/man-pages/man2/send.2.html), `MSG_DONTWAIT`
pub(crate) fn answer_now(fd: impl AsFd, answer: &[u8]) {
    let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
    let _ = rustix::net::send(&fd, answer, flags);
    let _ = rustix::net::shutdown(&fd, rustix::net::Shutdown::Write);
    let _ = recv_now(&fd, &mut [0u8; 4096]);
}

#[cfg(feature = "tokio")]
/// Shuts down the sending direction of a socket (a half close).
///
/// # References
/// - [`shutdown(2)`](https://man7.org/linux/man-pages/man2/shutdown.2.html)
pub(crate) fn shutdown_write(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::net::shutdown(fd, rustix::net::Shutdown::Write)?)
}

/// The supplementary groups of process `pid`, read from `/proc/PID/status`.
///
/// An empty list when the process is gone or the file cannot be read.
///
/// # References
/// - [`proc_pid_status(5)`](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html)
pub(crate) fn supplementary_groups(pid: u32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The effective uid and gid of this process.
pub(crate) fn current_user() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// Sets `SO_RCVBUF` and `SO_SNDBUF` where a size is given. The kernel doubles the value and
/// caps it at `net.core.rmem_max` / `wmem_max`.
///
/// # References
/// - [`socket(7)`](https://man7.org/linux/man-pages/man7/socket.7.html)
pub(crate) fn set_socket_buffers(
    fd: impl AsFd,
    recv: Option<usize>,
    send: Option<usize>,
) -> io::Result<()> {
    if let Some(size) = recv {
        rustix::net::sockopt::set_socket_recv_buffer_size(&fd, size)?;
    }
    if let Some(size) = send {
        rustix::net::sockopt::set_socket_send_buffer_size(&fd, size)?;
    }
    Ok(())
}

/// Waits until `fd` is readable (or has hung up) or `timeout` passes. Returns `false` on
/// timeout.
///
/// # References
/// - [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html)
pub(crate) fn wait_readable(fd: impl AsFd, timeout: Duration) -> io::Result<bool> {
    poll_in(&mut [PollFd::new(&fd, PollFlags::IN)], timeout)
}

/// Waits until either descriptor is readable or `timeout` passes. Returns `false` on
/// timeout.
///
/// # References
/// - [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html)
pub(crate) fn wait_readable_any(a: impl AsFd, b: impl AsFd, timeout: Duration) -> io::Result<bool> {
    poll_in(
        &mut [
            PollFd::new(&a, PollFlags::IN),
            PollFd::new(&b, PollFlags::IN),
        ],
        timeout,
    )
}

fn poll_in(fds: &mut [PollFd<'_>], timeout: Duration) -> io::Result<bool> {
    let timeout = Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    loop {
        match rustix::event::poll(fds, Some(&timeout)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
