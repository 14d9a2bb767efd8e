//! The control protocol: one JSON object per line, each way, at most [`MAX_MESSAGE`] bytes.
//! A client sends one [`Request`] and reads one [`Response`]; anything malformed or oversized
//! is answered with an error response (exit code 2) and the daemon carries on.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// The largest message either side accepts (a request carries iptables-restore input).
pub const MAX_MESSAGE: usize = 16 << 20;

/// What a client asks the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Is the daemon there?
    Ping {},
    /// Runs a store tool (`iptables`, `iptables-save`, `iptables-restore`, `proc`) with `args`
    /// and `stdin`; a changed ruleset is then swapped in atomically.
    Tool {
        /// The tool's name.
        tool: String,
        /// Its arguments (without `--store`).
        args: Vec<String>,
        /// Its standard input (iptables-restore).
        #[serde(default)]
        stdin: String,
    },
    /// `conntrack ARGS` against the live table.
    Conntrack {
        /// Arguments.
        args: Vec<String>,
    },
    /// `sysctl ARGS` against the live settings.
    Sysctl {
        /// Arguments.
        args: Vec<String>,
    },
    /// `conntrack -E ARGS`: the answer is a stream of responses, one per event line, until
    /// the client goes away (the first one accepts or refuses the request).
    Events {
        /// Arguments.
        args: Vec<String>,
    },
    /// `nfrs check PACKET`: what the packet would meet now, changing nothing.
    Check {
        /// The packet line (scenario packet syntax, without or with a leading time).
        packet: String,
    },
}

/// The daemon's answer: what the command printed and its exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    #[serde(default)]
    pub stdout: String,
    /// Standard error.
    #[serde(default)]
    pub stderr: String,
}

impl Response {
    /// An error reply with exit code `code`.
    pub fn error(code: i32, msg: impl Into<String>) -> Response {
        let mut stderr = msg.into();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Response {
            code,
            stdout: String::new(),
            stderr,
        }
    }
}

/// Why a message could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed before a full line.
    Closed,
    /// Longer than [`MAX_MESSAGE`].
    TooLong,
    /// Not a valid message.
    Malformed(String),
    /// An I/O error (timeout included).
    Io(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => f.write_str("connection closed before a complete message"),
            ReadError::TooLong => write!(f, "message longer than {MAX_MESSAGE} bytes"),
            ReadError::Malformed(m) => write!(f, "malformed message: {m}"),
            ReadError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

/// Reads one line of at most [`MAX_MESSAGE`] bytes (without its newline).
pub fn read_line(r: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e.to_string())),
        };
        if buf.is_empty() {
            return Err(ReadError::Closed);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_MESSAGE + 1 {
            return Err(ReadError::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            line.pop();
            return Ok(line);
        }
    }
}

/// Parses one request line.
pub fn parse_request(line: &[u8]) -> Result<Request, ReadError> {
    serde_json::from_slice(line).map_err(|e| ReadError::Malformed(e.to_string()))
}

/// Parses one response line.
pub fn parse_response(line: &[u8]) -> Result<Response, ReadError> {
    serde_json::from_slice(line).map_err(|e| ReadError::Malformed(e.to_string()))
}

/// Writes a message as one line.
pub fn write_msg(w: &mut impl Write, msg: &impl Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    if text.len() > MAX_MESSAGE {
        return Err(std::io::Error::other("message too long"));
    }
    text.push(b'\n');
    w.write_all(&text)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let r = Request::Tool {
            tool: "iptables".into(),
            args: vec!["-A".into(), "FORWARD".into(), "-j".into(), "DROP".into()],
            stdin: String::new(),
        };
        let mut out = Vec::new();
        write_msg(&mut out, &r).unwrap();
        assert_eq!(*out.last().unwrap(), b'\n');
        let line = read_line(&mut &out[..]).unwrap();
        assert_eq!(parse_request(&line).unwrap(), r);
        assert_eq!(
            parse_request(br#"{"op":"ping"}"#).unwrap(),
            Request::Ping {}
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        for bad in [
            &b"not json"[..],
            br#"{"op":"reboot"}"#,
            br#"{"op":"tool","tool":"iptables"}"#,
            br#"{"op":"ping","extra":1}"#,
            br#"{"op":"conntrack","args":"-L"}"#,
            b"",
        ] {
            assert!(
                matches!(parse_request(bad), Err(ReadError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn oversized_and_truncated_lines() {
        let big = vec![b'x'; MAX_MESSAGE + 10];
        assert_eq!(read_line(&mut &big[..]), Err(ReadError::TooLong));
        assert_eq!(read_line(&mut &b"{\"op\""[..]), Err(ReadError::Closed));
        let mut two = &b"a\nb\n"[..];
        assert_eq!(read_line(&mut two).unwrap(), b"a");
        assert_eq!(read_line(&mut two).unwrap(), b"b");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn request() -> impl Strategy<Value = Request> {
        let args = proptest::collection::vec(".{0,12}", 0..5);
        prop_oneof![
            Just(Request::Ping {}),
            (".{0,10}", args.clone(), ".{0,40}").prop_map(|(tool, args, stdin)| Request::Tool {
                tool,
                args,
                stdin
            }),
            args.clone().prop_map(|args| Request::Conntrack { args }),
            args.clone().prop_map(|args| Request::Sysctl { args }),
            args.clone().prop_map(|args| Request::Events { args }),
            ".{0,40}".prop_map(|packet| Request::Check { packet }),
        ]
    }

    proptest! {
        // Whatever a client sends, reading and parsing it returns (never panics).
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut r = &data[..];
            while let Ok(line) = read_line(&mut r) {
                let _ = parse_request(&line);
                let _ = parse_response(&line);
            }
        }

        // Every request survives the wire unchanged, newlines and quotes in arguments included.
        #[test]
        fn requests_round_trip(req in request()) {
            let mut out = Vec::new();
            write_msg(&mut out, &req).unwrap();
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            let line = read_line(&mut &out[..]).unwrap();
            prop_assert_eq!(parse_request(&line).unwrap(), req);
        }
    }
}
