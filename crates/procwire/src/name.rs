//! Object names and namespaces.
//!
//! One syntax names every procwire object, as on Windows:
//!
//! | form | meaning |
//! |---|---|
//! | `HelloWorld` | a bare name in the caller's [`Namespace::Local`] |
//! | `Local\HelloWorld`, `Global\HelloWorld` | an explicit namespace |
//! | `\\.\pipe\HelloWorld`, `\\.\mailslot\HelloWorld` | the Windows forms, same objects |
//! | `\\host\pipe\HelloWorld`, `\\host:port\pipe\HelloWorld` | a pipe on another machine (TCP) |
//! | `\\host:port\mailslot\HelloWorld`, `\\*\mailslot\HelloWorld` | a mailslot on another machine, or every machine on the local network (UDP) |
//!
//! The object part is 1 to [`MAX_OBJECT_LEN`] bytes of printable characters other than `/`
//! and `\`. Namespace and class prefixes are case-insensitive; object names are not.
//!
//! # Where names live
//!
//! **Local** objects live in a directory only the user can enter: `$XDG_RUNTIME_DIR/procwire`
//! when that variable names a directory of the user's, else `procwire-UID` in the temp
//! directory. procwire creates it with mode `0700` and refuses one owned by someone else.
//! **Global** objects live in `/tmp/procwire-global` (mode `1777`, like `/tmp`): every user
//! can create objects there, and each object carries its own access list.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

/// The longest object name, in bytes. Socket paths must fit in 108 bytes.
pub const MAX_OBJECT_LEN: usize = 64;

/// Whose objects a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Private to the user (the default for a bare name).
    Local,
    /// Shared by every user of the machine; access lists decide who may open what.
    Global,
}

/// The class prefix a name was written with (`\\.\pipe\`, `\\.\mailslot\`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameClass {
    /// `\\server\pipe\…`
    Pipe,
    /// `\\server\mailslot\…`
    Mailslot,
}

impl NameClass {
    /// The class as written in a name: `pipe` or `mailslot`.
    pub fn as_str(self) -> &'static str {
        match self {
            NameClass::Pipe => "pipe",
            NameClass::Mailslot => "mailslot",
        }
    }
}

/// Where the named object is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// On this machine, in a namespace.
    Here(Namespace),
    /// On another machine: `\\host\…` or `\\host:port\…`.
    Remote {
        /// The host name or address, without brackets.
        host: String,
        /// The port, when the name gives one.
        port: Option<u16>,
    },
    /// Every machine on the local network: `\\*\mailslot\…` (mailslots only).
    Broadcast {
        /// The port, when the name gives one.
        port: Option<u16>,
    },
}

/// A parsed object name. See the [module docs](self) for the syntax.
///
/// # Examples
///
/// ```
/// use procwire::name::{Name, Namespace, Location};
///
/// let name: Name = r"\\.\pipe\HelloWorld".parse()?;
/// assert_eq!(name.object(), "HelloWorld");
/// assert_eq!(name.location(), &Location::Here(Namespace::Local));
///
/// let remote: Name = r"\\build-box:7000\pipe\Jobs".parse()?;
/// assert!(remote.is_remote());
/// # Ok::<(), procwire::name::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    location: Location,
    class: Option<NameClass>,
    object: String,
}

/// Why a string is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty, or its object part is.
    #[error("name `{name}` has an empty object part; give a name such as `HelloWorld`")]
    Empty {
        /// The name as given.
        name: String,
    },
    /// The object part is longer than [`MAX_OBJECT_LEN`].
    #[error("name `{name}` is too long: the object part is {len} bytes, at most {MAX_OBJECT_LEN} are allowed")]
    TooLong {
        /// The name as given.
        name: String,
        /// The length of the object part in bytes.
        len: usize,
    },
    /// The object part holds a character that names cannot hold.
    #[error("name `{name}` contains {ch:?}, which object names cannot contain (no `/`, `\\` or control characters)")]
    InvalidChar {
        /// The name as given.
        name: String,
        /// The offending character.
        ch: char,
    },
    /// `.` and `..` are not object names.
    #[error("name `{name}`: `.` and `..` are not object names")]
    Reserved {
        /// The name as given.
        name: String,
    },
    /// A `Prefix\` that is neither `Local\` nor `Global\`.
    #[error("name `{name}` starts with unknown namespace `{prefix}\\`; use `Local\\`, `Global\\` or no prefix")]
    UnknownNamespace {
        /// The name as given.
        name: String,
        /// The prefix found.
        prefix: String,
    },
    /// A `\\server\class\` form whose class is neither `pipe` nor `mailslot`.
    #[error("name `{name}` has unknown class `{class}`; use `\\\\.\\pipe\\NAME` or `\\\\.\\mailslot\\NAME`")]
    UnknownClass {
        /// The name as given.
        name: String,
        /// The class found.
        class: String,
    },
    /// The `\\server\` part is not `.`, `*`, a host or `host:port`.
    #[error("name `{name}` has a bad server part `{server}`: {problem}")]
    BadServer {
        /// The name as given.
        name: String,
        /// The server part found.
        server: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A `\\server\…` form with no class or object part.
    #[error("name `{name}` is incomplete; the full form is `\\\\SERVER\\pipe\\NAME` or `\\\\SERVER\\mailslot\\NAME`")]
    Incomplete {
        /// The name as given.
        name: String,
    },
    /// The name has the wrong class for the API it was given to.
    #[error("name `{name}` is a {found} name, but a {expected} was asked for")]
    WrongClass {
        /// The name as given.
        name: String,
        /// The class of the name.
        found: &'static str,
        /// The class the API works with.
        expected: &'static str,
    },
}

impl Name {
    /// Parses a name in any of the forms in the [module docs](self).
    ///
    /// # Errors
    ///
    /// A [`NameError`] that says what is wrong with the name.
    pub fn parse(input: &str) -> Result<Name, NameError> {
        if let Some(rest) = input.strip_prefix(r"\\") {
            return Self::parse_unc(input, rest);
        }
        let (namespace, object) = split_namespace(input, input)?;
        Ok(Name {
            location: Location::Here(namespace),
            class: None,
            object: validate_object(input, object)?,
        })
    }

    fn parse_unc(input: &str, rest: &str) -> Result<Name, NameError> {
        let incomplete = || NameError::Incomplete {
            name: input.to_owned(),
        };
        let (server, rest) = rest.split_once('\\').ok_or_else(incomplete)?;
        let (class, rest) = rest.split_once('\\').ok_or_else(incomplete)?;
        let class = match class.to_ascii_lowercase().as_str() {
            "pipe" => NameClass::Pipe,
            "mailslot" => NameClass::Mailslot,
            _ => {
                return Err(NameError::UnknownClass {
                    name: input.to_owned(),
                    class: class.to_owned(),
                })
            }
        };
        let bad = |problem| NameError::BadServer {
            name: input.to_owned(),
            server: server.to_owned(),
            problem,
        };
        let (namespace, object) = split_namespace(input, rest)?;
        let location = match server {
            "" => return Err(bad("it is empty; use `.` for this machine")),
            "." => Location::Here(namespace),
            _ => {
                if namespace != Namespace::Local || rest.contains('\\') {
                    return Err(bad("a namespace prefix only applies to this machine (`.`)"));
                }
                let (host, port) = split_host_port(server).map_err(bad)?;
                if host == "*" {
                    if class != NameClass::Mailslot {
                        return Err(bad("`*` (broadcast) is for mailslots only"));
                    }
                    Location::Broadcast { port }
                } else {
                    Location::Remote { host, port }
                }
            }
        };
        Ok(Name {
            location,
            class: Some(class),
            object: validate_object(input, object)?,
        })
    }

    /// A bare name in the given namespace, such as `Global\Jobs`.
    ///
    /// # Errors
    ///
    /// A [`NameError`] when `object` is not a valid object name.
    pub fn new(namespace: Namespace, object: &str) -> Result<Name, NameError> {
        Ok(Name {
            location: Location::Here(namespace),
            class: None,
            object: validate_object(object, object)?,
        })
    }

    /// The name of the pipe `object` served over TCP at `addr`: `\\host:port\pipe\object`
    /// (an IPv6 address in brackets), without formatting it by hand.
    ///
    /// # Errors
    ///
    /// A [`NameError`] when `object` is not a valid object name.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use procwire::name::Name;
    ///
    /// let addr: SocketAddr = "[::1]:7000".parse().unwrap();
    /// let name = Name::tcp_pipe(addr, "Jobs")?;
    /// assert_eq!(name.to_string(), r"\\[::1]:7000\pipe\Jobs");
    /// # Ok::<(), procwire::name::NameError>(())
    /// ```
    pub fn tcp_pipe(addr: std::net::SocketAddr, object: &str) -> Result<Name, NameError> {
        Ok(Name {
            location: Location::Remote {
                host: addr.ip().to_string(),
                port: Some(addr.port()),
            },
            class: Some(NameClass::Pipe),
            object: validate_object(object, object)?,
        })
    }

    /// The object part: `HelloWorld` in `\\.\pipe\HelloWorld`.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// Where the object is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The namespace, for an object on this machine.
    pub fn namespace(&self) -> Option<Namespace> {
        match self.location {
            Location::Here(ns) => Some(ns),
            _ => None,
        }
    }

    /// The class prefix the name was written with, if any.
    pub fn class(&self) -> Option<NameClass> {
        self.class
    }

    /// Whether the object is on another machine (or every machine).
    pub fn is_remote(&self) -> bool {
        !matches!(self.location, Location::Here(_))
    }

    /// Checks that the name may name an object of class `expected`: either it has no class
    /// prefix or it has that one.
    ///
    /// # Errors
    ///
    /// [`NameError::WrongClass`] when the name was written with another class.
    pub fn expect_class(&self, expected: NameClass) -> Result<(), NameError> {
        match self.class {
            Some(found) if found != expected => Err(NameError::WrongClass {
                name: self.to_string(),
                found: found.as_str(),
                expected: expected.as_str(),
            }),
            _ => Ok(()),
        }
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Name, NameError> {
        Name::parse(s)
    }
}

impl TryFrom<&str> for Name {
    type Error = NameError;

    fn try_from(s: &str) -> Result<Name, NameError> {
        Name::parse(s)
    }
}

impl TryFrom<&Name> for Name {
    type Error = NameError;

    fn try_from(name: &Name) -> Result<Name, NameError> {
        Ok(name.clone())
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;

    fn try_from(s: String) -> Result<Name, NameError> {
        Name::parse(&s)
    }
}

impl TryFrom<&String> for Name {
    type Error = NameError;

    fn try_from(s: &String) -> Result<Name, NameError> {
        Name::parse(s)
    }
}

impl fmt::Display for Name {
    /// The canonical form: `Local\X`, `Global\X`, `\\.\pipe\X`, `\\host:port\pipe\X`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = match &self.location {
            Location::Here(ns) => {
                let ns = match ns {
                    Namespace::Local => "",
                    Namespace::Global => r"Global\",
                };
                return match self.class {
                    Some(class) => write!(f, r"\\.\{}\{ns}{}", class.as_str(), self.object),
                    None if ns.is_empty() => write!(f, r"Local\{}", self.object),
                    None => write!(f, "{ns}{}", self.object),
                };
            }
            Location::Remote { host, port } => format_server(host, *port),
            Location::Broadcast { port } => format_server("*", *port),
        };
        let class = self.class.map_or("pipe", NameClass::as_str);
        write!(f, r"\\{server}\{class}\{}", self.object)
    }
}

fn format_server(host: &str, port: Option<u16>) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

fn split_namespace<'a>(input: &str, s: &'a str) -> Result<(Namespace, &'a str), NameError> {
    let Some((prefix, object)) = s.split_once('\\') else {
        return Ok((Namespace::Local, s));
    };
    match prefix.to_ascii_lowercase().as_str() {
        "local" => Ok((Namespace::Local, object)),
        "global" => Ok((Namespace::Global, object)),
        _ => Err(NameError::UnknownNamespace {
            name: input.to_owned(),
            prefix: prefix.to_owned(),
        }),
    }
}

fn validate_object(input: &str, object: &str) -> Result<String, NameError> {
    if object.is_empty() {
        return Err(NameError::Empty {
            name: input.to_owned(),
        });
    }
    if let Some(ch) = object
        .chars()
        .find(|&c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(NameError::InvalidChar {
            name: input.to_owned(),
            ch,
        });
    }
    if object == "." || object == ".." {
        return Err(NameError::Reserved {
            name: input.to_owned(),
        });
    }
    if object.len() > MAX_OBJECT_LEN {
        return Err(NameError::TooLong {
            name: input.to_owned(),
            len: object.len(),
        });
    }
    Ok(object.to_owned())
}

fn split_host_port(server: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("`[` without `]`")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("expected `:PORT` after `]`")?,
                ),
            ),
        }
    } else if server.matches(':').count() > 1 {
        return Err("an IPv6 address must be written in brackets, as `[::1]:7000`");
    } else {
        match server.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (server, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err("the host contains a space, `/` or a control character");
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err("the port must be a number from 1 to 65535"),
            Ok(p) => Some(p),
        },
    };
    Ok((host.to_owned(), port))
}

impl Namespace {
    /// The directory that holds this namespace's objects of `class`, created if missing:
    /// `0700` and owned by the user for Local, `1777` for Global.
    ///
    /// # Errors
    ///
    /// An I/O error when the directory cannot be created, or when an existing one belongs
    /// to another user (`PermissionDenied`).
    pub fn directory(self, class: NameClass) -> io::Result<PathBuf> {
        let root = self.root();
        let dir = root.join(class.as_str());
        match self {
            Namespace::Local => {
                crate::sys::ensure_private_dir(&root)?;
                crate::sys::ensure_private_dir(&dir)?;
            }
            Namespace::Global => crate::registry::ensure_global_tree()?,
        }
        Ok(dir)
    }

    /// The namespace's root directory, without creating it.
    pub fn root(self) -> PathBuf {
        match self {
            Namespace::Local => local_root(),
            Namespace::Global => PathBuf::from("/tmp/procwire-global"),
        }
    }
}

fn local_root() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let (uid, _) = crate::sys::current_user();
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        let runtime = PathBuf::from(runtime);
        let ours = std::fs::metadata(&runtime)
            .map(|m| m.is_dir() && m.uid() == uid)
            .unwrap_or(false);
        if runtime.is_absolute() && ours {
            return runtime.join("procwire");
        }
    }
    std::env::temp_dir().join(format!("procwire-{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here(ns: Namespace, class: Option<NameClass>, object: &str) -> Name {
        Name {
            location: Location::Here(ns),
            class,
            object: object.into(),
        }
    }

    #[test]
    fn parses_every_form() {
        let cases = [
            ("HelloWorld", here(Namespace::Local, None, "HelloWorld")),
            (
                r"Local\HelloWorld",
                here(Namespace::Local, None, "HelloWorld"),
            ),
            (
                r"Global\HelloWorld",
                here(Namespace::Global, None, "HelloWorld"),
            ),
            (r"global\X", here(Namespace::Global, None, "X")),
            (
                r"\\.\pipe\HelloWorld",
                here(Namespace::Local, Some(NameClass::Pipe), "HelloWorld"),
            ),
            (
                r"\\.\PIPE\Global\HelloWorld",
                here(Namespace::Global, Some(NameClass::Pipe), "HelloWorld"),
            ),
            (
                r"\\.\mailslot\HelloWorld",
                here(Namespace::Local, Some(NameClass::Mailslot), "HelloWorld"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Name::parse(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn parses_remote_forms() {
        let n = Name::parse(r"\\host\pipe\A").unwrap();
        assert_eq!(
            n.location(),
            &Location::Remote {
                host: "host".into(),
                port: None
            }
        );
        let n = Name::parse(r"\\10.0.0.1:7000\pipe\A").unwrap();
        assert_eq!(
            n.location(),
            &Location::Remote {
                host: "10.0.0.1".into(),
                port: Some(7000)
            }
        );
        let n = Name::parse(r"\\[::1]:7000\mailslot\A").unwrap();
        assert_eq!(
            n.location(),
            &Location::Remote {
                host: "::1".into(),
                port: Some(7000)
            }
        );
        let n = Name::parse(r"\\*\mailslot\A").unwrap();
        assert_eq!(n.location(), &Location::Broadcast { port: None });
        assert_eq!(n.class(), Some(NameClass::Mailslot));
    }

    #[test]
    fn display_round_trips() {
        for input in [
            r"Local\A",
            r"Global\A",
            r"\\.\pipe\A",
            r"\\.\pipe\Global\A",
            r"\\.\mailslot\A",
            r"\\h:1\pipe\A",
            r"\\[::1]:9\pipe\A",
            r"\\*\mailslot\A",
            r"\\*:99\mailslot\A",
        ] {
            let name = Name::parse(input).unwrap();
            assert_eq!(name.to_string(), input);
            assert_eq!(Name::parse(&name.to_string()).unwrap(), name);
        }
    }

    #[test]
    fn rejects_malformed_names_with_reasons() {
        let err = |s: &str| Name::parse(s).unwrap_err();
        assert!(matches!(err(""), NameError::Empty { .. }));
        assert!(matches!(err(r"Local\"), NameError::Empty { .. }));
        assert!(matches!(err("a/b"), NameError::InvalidChar { ch: '/', .. }));
        assert!(matches!(err("a\u{1}"), NameError::InvalidChar { .. }));
        assert!(matches!(err(".."), NameError::Reserved { .. }));
        assert!(matches!(
            err(&"x".repeat(MAX_OBJECT_LEN + 1)),
            NameError::TooLong { .. }
        ));
        assert!(matches!(
            err(r"Session\A"),
            NameError::UnknownNamespace { .. }
        ));
        assert!(matches!(
            err(r"\\.\queue\A"),
            NameError::UnknownClass { .. }
        ));
        assert!(matches!(err(r"\\.\pipe"), NameError::Incomplete { .. }));
        assert!(matches!(err(r"\\\pipe\A"), NameError::BadServer { .. }));
        assert!(matches!(err(r"\\*\pipe\A"), NameError::BadServer { .. }));
        assert!(matches!(err(r"\\h:0\pipe\A"), NameError::BadServer { .. }));
        assert!(matches!(err(r"\\h:x\pipe\A"), NameError::BadServer { .. }));
        assert!(matches!(err(r"\\::1\pipe\A"), NameError::BadServer { .. }));
        assert!(matches!(
            err(r"\\h\pipe\Global\b"),
            NameError::BadServer { .. }
        ));
        let text = err(r"\\.\queue\A").to_string();
        assert!(text.contains("queue"), "{text}");
    }

    #[test]
    fn wrong_class_is_reported() {
        let name = Name::parse(r"\\.\mailslot\A").unwrap();
        let e = name.expect_class(NameClass::Pipe).unwrap_err();
        assert_eq!(
            e.to_string(),
            r"name `\\.\mailslot\A` is a mailslot name, but a pipe was asked for"
        );
        assert!(Name::parse("A")
            .unwrap()
            .expect_class(NameClass::Pipe)
            .is_ok());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::Name;

    proptest! {
        #[test]
        fn any_string_parses_or_errors_and_printing_round_trips(s in ".{0,80}") {
            if let Ok(name) = Name::parse(&s) {
                prop_assert_eq!(Name::parse(&name.to_string()), Ok(name));
            }
        }

        #[test]
        fn name_like_strings_round_trip(
            prefix in prop_oneof![
                Just(""), Just(r"Local\"), Just(r"Global\"), Just(r"\\.\pipe\"),
                Just(r"\\.\mailslot\Global\"), Just(r"\\h:9\pipe\"), Just(r"\\*\mailslot\"),
            ],
            object in "[a-zA-Z0-9._ -]{1,64}",
        ) {
            let input = format!("{prefix}{object}");
            match Name::parse(&input) {
                Ok(name) => prop_assert_eq!(Name::parse(&name.to_string()), Ok(name)),
                Err(e) => prop_assert!(object == "." || object == "..", "{}: {}", input, e),
            }
        }
    }
}
