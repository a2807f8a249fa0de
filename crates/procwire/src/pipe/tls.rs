//! TLS over a pipe's TCP connection (blocking API), with rustls.
//!
//! One [`TlsStream`] is shared by every handle of a connection (`try_clone`), so that one
//! thread can read while another writes: the TLS state sits behind a lock that is never
//! held across a blocking socket call, and a second lock keeps the encrypted records of
//! concurrent writers in order.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

/// A TLS session over a TCP stream.
#[derive(Debug)]
pub(crate) struct TlsStream {
    sock: TcpStream,
    conn: Mutex<Session>,
    /// Held from encrypting a record until it is on the socket.
    sending: Mutex<()>,
}

/// The TLS state and the records received but not yet taken in by it.
#[derive(Debug)]
struct Session {
    conn: Connection,
    pending: Vec<u8>,
}

impl Session {
    /// Feeds received records to the TLS state as far as it takes them.
    fn take_in(&mut self) -> io::Result<()> {
        // `wants_read` is false while decrypted bytes wait to be read: taking in more then
        // would overflow rustls' plaintext buffer.
        while !self.pending.is_empty() && self.conn.wants_read() {
            let n = self.conn.read_tls(&mut &self.pending[..])?;
            self.pending.drain(..n);
            self.conn.process_new_packets().map_err(tls_error)?;
            if n == 0 {
                break;
            }
        }
        Ok(())
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}

impl TlsStream {
    /// The server side: runs the handshake on `sock` (whose timeouts bound it).
    pub(crate) fn accept(sock: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let conn = ServerConnection::new(config).map_err(tls_error)?;
        Self::handshake(sock, conn.into())
    }

    /// The client side: runs the handshake, checking the server's certificate for `host`.
    pub(crate) fn connect(
        sock: TcpStream,
        config: Arc<ClientConfig>,
        host: &str,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("`{host}`: {e}")))?;
        let conn = ClientConnection::new(config, name).map_err(tls_error)?;
        Self::handshake(sock, conn.into())
    }

    fn handshake(mut sock: TcpStream, mut conn: Connection) -> io::Result<TlsStream> {
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        while conn.wants_write() {
            conn.complete_io(&mut sock)?;
        }
        Ok(TlsStream {
            sock,
            conn: Mutex::new(Session {
                conn,
                pending: Vec::new(),
            }),
            sending: Mutex::new(()),
        })
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The TCP socket under the session.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Whether decrypted bytes are waiting, so a read would not block.
    pub(crate) fn has_plaintext(&self) -> bool {
        let mut session = self.session();
        if session.take_in().is_err() {
            return true;
        }
        session
            .conn
            .process_new_packets()
            .map(|state| state.plaintext_bytes_to_read() > 0)
            .unwrap_or(true)
    }

    /// Reads decrypted bytes; 0 at the peer's orderly close.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut record = [0u8; 16 * 1024 + 512];
        loop {
            let answer = {
                let mut session = self.session();
                session.take_in()?;
                match session.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                session.conn.wants_write()
            };
            if answer {
                // An alert or key update to answer.
                self.flush_records()?;
            }
            // More records are needed: wait for them without holding the session.
            let n = (&self.sock).read(&mut record)?;
            let mut session = self.session();
            if n == 0 {
                // End of stream: the TLS state says whether it was an orderly close.
                session.conn.read_tls(&mut &record[..0])?;
                session.conn.process_new_packets().map_err(tls_error)?;
            } else {
                session.pending.extend_from_slice(&record[..n]);
            }
        }
    }

    /// Encrypts and sends all of `bufs`; returns their total length.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let _order = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0;
        for buf in bufs {
            let mut rest: &[u8] = buf;
            while !rest.is_empty() {
                let (n, records) = {
                    let conn = &mut self.session().conn;
                    let n = conn.writer().write(rest)?;
                    let mut records = Vec::new();
                    while conn.wants_write() {
                        conn.write_tls(&mut records)?;
                    }
                    (n, records)
                };
                (&self.sock).write_all(&records)?;
                rest = &rest[n..];
                total += n;
            }
        }
        Ok(total)
    }

    fn flush_records(&self) -> io::Result<()> {
        let _order = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        let mut records = Vec::new();
        {
            let conn = &mut self.session().conn;
            while conn.wants_write() {
                conn.write_tls(&mut records)?;
            }
        }
        (&self.sock).write_all(&records)
    }

    /// Shuts down: a close_notify first when the sending direction closes.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            self.session().conn.send_close_notify();
            let _ = self.flush_records();
        }
        self.sock.shutdown(how)
    }

    /// Ends the session in order (close_notify) unless a writer is mid-record.
    fn close_notify(&self) {
        let Ok(_order) = self.sending.try_lock() else {
            return;
        };
        let records = {
            let Ok(mut session) = self.conn.try_lock() else {
                return;
            };
            session.conn.send_close_notify();
            let mut records = Vec::new();
            while session.conn.wants_write() {
                if session.conn.write_tls(&mut records).is_err() {
                    break;
                }
            }
            records
        };
        let _ = self
            .sock
            .set_write_timeout(Some(std::time::Duration::from_millis(100)));
        let _ = (&self.sock).write_all(&records);
    }

    /// Reads with a deadline for the whole exchange.
    pub(crate) fn read_by(&self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.sock.set_read_timeout(Some(left))?;
        self.read(buf)
    }
}

impl Drop for TlsStream {
    fn drop(&mut self) {
        self.close_notify();
    }
}
