//! UNIX stream sockets (`unix:PATH`, `unix:@name`): their names, listening on one
//! and connecting to one.
//!
//! A UNIX stream socket reads, writes, shuts down and answers `SIOCINQ`/`SIOCOUTQ`
//! as a TCP socket does, so once connected it is an ordinary `socket2::Socket` to
//! the relay. What differs is here: the name, which must fit in `sun_path`; the
//! socket file a listener leaves behind, removed when the listener closes; and a
//! stale file from a run that died, replaced only when nothing listens on it any
//! more.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

/// The longest name `sun_path` holds: 108 bytes, less the terminating NUL of a
/// path (or the leading NUL of an abstract name).
pub const MAX_NAME: usize = 107;

/// A UNIX socket's name: a file, or a name in Linux's abstract namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixPath {
    File(PathBuf),
    Abstract(Vec<u8>),
}

impl UnixPath {
    /// What follows `unix:`: a path, or `@name` for the abstract namespace.
    pub fn parse(text: &str) -> Result<UnixPath, String> {
        let (name, path) = match text.strip_prefix('@') {
            Some(name) => (name, UnixPath::Abstract(name.as_bytes().to_vec())),
            None => (text, UnixPath::File(PathBuf::from(text))),
        };
        if name.is_empty() {
            return Err(format!("'unix:{text}': missing the socket's name"));
        }
        if name.len() > MAX_NAME {
            return Err(format!(
                "'unix:{text}': the name is {} bytes long; a UNIX socket's is at most {MAX_NAME}",
                name.len()
            ));
        }
        if name.bytes().any(|b| b == 0) {
            return Err(format!("'unix:{text}': a NUL byte in the name"));
        }
        Ok(path)
    }

    fn sockaddr(&self) -> io::Result<SockAddr> {
        match self {
            UnixPath::File(path) => SockAddr::unix(path),
            UnixPath::Abstract(name) => {
                let mut bytes = vec![0];
                bytes.extend_from_slice(name);
                SockAddr::unix(OsStr::from_bytes(&bytes))
            }
        }
    }

    /// Connects to the socket, blocking.
    pub fn connect(&self, buffers: Option<(usize, usize)>) -> io::Result<Socket> {
        let socket = new_socket(buffers)?;
        socket.connect(&self.sockaddr()?)?;
        Ok(socket)
    }

    /// Binds and listens. A socket file left by a run that died is replaced, but only
    /// when nothing listens on it: a live server's socket is never taken over, and a
    /// file that is not a socket is never removed.
    pub fn listen(
        &self,
        buffers: Option<(usize, usize)>,
        backlog: i32,
    ) -> io::Result<(Socket, Option<SocketFile>)> {
        let addr = self.sockaddr()?;
        let socket = new_socket(buffers)?;
        match socket.bind(&addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && self.is_stale_file() => {
                if let UnixPath::File(path) = self {
                    std::fs::remove_file(path)?;
                }
                socket.bind(&addr)?;
            }
            bound => bound?,
        }
        socket.listen(backlog)?;
        let file = match self {
            UnixPath::File(path) => Some(SocketFile::of(path)?),
            UnixPath::Abstract(_) => None,
        };
        Ok((socket, file))
    }

    /// A socket file that nobody listens on: connecting is refused.
    fn is_stale_file(&self) -> bool {
        let UnixPath::File(path) = self else {
            return false;
        };
        let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
        is_socket
            && self
                .connect(None)
                .is_err_and(|e| e.raw_os_error() == Some(libc::ECONNREFUSED))
    }
}

impl fmt::Display for UnixPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixPath::File(path) => write!(f, "unix:{}", path.display()),
            UnixPath::Abstract(name) => write!(f, "unix:@{}", String::from_utf8_lossy(name)),
        }
    }
}

fn new_socket(buffers: Option<(usize, usize)>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    if let Some((snd, rcv)) = buffers {
        socket.set_send_buffer_size(snd)?;
        socket.set_recv_buffer_size(rcv)?;
    }
    Ok(socket)
}

/// The socket file a listener made, removed when dropped, unless something else
/// has taken its place meanwhile (another run that replaced it as stale).
pub struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl SocketFile {
    fn of(path: &Path) -> io::Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The name a UNIX connection was made through, as `-A`/`-B` write it
/// (`unix:/run/x.sock`, `unix:@name`): the listener's, which is the accepted
/// socket's own address and the connecting socket's peer's. `None` for another kind
/// of socket.
pub fn name_of(socket: &Socket) -> Option<String> {
    [socket.local_addr().ok(), socket.peer_addr().ok()]
        .into_iter()
        .flatten()
        .find_map(|addr| {
            if let Some(path) = addr.as_pathname() {
                Some(format!("unix:{}", path.display()))
            } else {
                let name = addr.as_abstract_namespace()?;
                Some(format!("unix:@{}", String::from_utf8_lossy(name)))
            }
        })
}

/// Whether a socket is a UNIX one (no TCP options apply to it).
pub fn is_unix(socket: &Socket) -> bool {
    socket.local_addr().is_ok_and(|a| a.is_unix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_limits() {
        assert_eq!(
            UnixPath::parse("/run/x.sock"),
            Ok(UnixPath::File("/run/x.sock".into()))
        );
        assert_eq!(
            UnixPath::parse("@name"),
            Ok(UnixPath::Abstract(b"name".to_vec()))
        );
        assert!(UnixPath::parse(&"a".repeat(MAX_NAME)).is_ok());
        let err = UnixPath::parse(&"a".repeat(MAX_NAME + 1)).unwrap_err();
        assert!(err.contains("108 bytes long"), "{err}");
        assert!(UnixPath::parse(&format!("@{}", "a".repeat(MAX_NAME + 1))).is_err());
        assert!(UnixPath::parse("").is_err());
        assert!(UnixPath::parse("@").is_err());
        assert_eq!(
            UnixPath::parse("@x").unwrap().to_string(),
            "unix:@x".to_string()
        );
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tiburoncin-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_stale_file_is_replaced_and_a_live_one_is_not() {
        let path = scratch("stale.sock");
        let name = UnixPath::File(path.clone());
        // A listener that dies without removing its file leaves it stale.
        let (socket, file) = name.listen(None, 1).unwrap();
        std::mem::forget(file);
        drop(socket);
        let second = name.listen(None, 1).unwrap();
        // Now something listens: a third run must not take the socket over.
        let err = name.listen(None, 1).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(name.connect(None).is_ok());
        drop(second);
        assert!(!path.exists(), "the listener's file is removed with it");
    }

    #[test]
    fn a_plain_file_in_the_way_is_left_alone() {
        let path = scratch("plain");
        std::fs::write(&path, b"keep").unwrap();
        assert!(UnixPath::File(path.clone()).listen(None, 1).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }

    #[test]
    fn abstract_names_connect() {
        let name = UnixPath::Abstract(format!("tiburoncin-test-{}", std::process::id()).into());
        let (listener, _) = name.listen(None, 1).unwrap();
        let client = name.connect(None).unwrap();
        assert!(is_unix(&client) && is_unix(&listener));
    }
}
