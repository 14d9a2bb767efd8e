//! Errors as iptables reports them: parameter problems (exit 2), kernel refusals and other
//! failures (exit 1), and extensions nfrs does not implement yet (exit 2, named).

use std::fmt;

/// Why an operation failed; decides the exit status and the message shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A command line / rule text problem (iptables' PARAMETER_PROBLEM): exit status 2.
    Parameter,
    /// What the kernel refuses when the table is replaced, with iptables' strerror text: exit 1.
    Kernel(Errno),
    /// The extension exists in iptables but nfrs does not implement it yet: exit status 2.
    Unsupported,
    /// Any other failure (I/O on the store, ...): exit status 1.
    Other,
    /// A parameter problem iptables prints without its "iptables vX (legacy): " prefix
    /// ("Bad argument `x'"): exit status 2.
    ParameterBare,
}

/// The kernel error numbers iptables turns into its own messages (`iptc_strerror`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// EINVAL from a checkentry: "Invalid argument. Run `dmesg' for more information."
    Inval,
    /// ENOENT: "No chain/target/match by that name."
    NoEnt,
    /// ELOOP: a jump would create a loop.
    Loop,
    /// EMLINK: deleting a chain that is still referenced.
    MLink,
    /// EEXIST: "Chain already exists."
    Exist,
    /// ENOTEMPTY: deleting a chain that still has rules.
    NotEmpty,
    /// Policy set on a user chain.
    BadBuiltin,
    /// Policy name not ACCEPT/DROP.
    BadPolicy,
    /// Rule number past the end for -D.
    DeleteIndex,
    /// Rule number past the end for -I.
    InsertIndex,
    /// Rule number past the end for -R.
    ReplaceIndex,
    /// -D / -C found no identical rule.
    BadRule,
    /// EEXIST as -E reports it: "File exists."
    FileExists,
    /// Rule number past the end for -Z CHAIN NUM.
    CounterIndex,
}

impl Errno {
    /// The text iptables prints after "iptables: ".
    pub fn text(self) -> &'static str {
        match self {
            Errno::Inval => "Invalid argument. Run `dmesg' for more information.",
            Errno::NoEnt => "No chain/target/match by that name.",
            Errno::Loop => "Too many levels of symbolic links.",
            Errno::MLink => "Too many links.",
            Errno::Exist => "Chain already exists.",
            Errno::NotEmpty => "Directory not empty.",
            Errno::BadBuiltin => "Bad built-in chain name.",
            Errno::BadPolicy => "Bad policy name. Run `dmesg' for more information.",
            Errno::DeleteIndex => "Index of deletion too big.",
            Errno::InsertIndex => "Index of insertion too big.",
            Errno::ReplaceIndex => "Index of replacement too big.",
            Errno::BadRule => "Bad rule (does a matching rule exist in that chain?).",
            Errno::FileExists => "File exists.",
            Errno::CounterIndex => "Index of counter too big.",
        }
    }
}

/// An error with iptables' message text (without the "iptables v1.8.9 (legacy): " prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub msg: String,
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A parameter problem (exit 2) with iptables' message text.
    pub fn param(msg: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Parameter,
            msg: msg.into(),
        }
    }
    /// A kernel refusal (exit 1).
    pub fn kernel(errno: Errno) -> Error {
        Error {
            kind: ErrorKind::Kernel(errno),
            msg: errno.text().to_string(),
        }
    }
    /// An iptables extension nfrs does not implement yet.
    pub fn unsupported(what: &str) -> Error {
        Error {
            kind: ErrorKind::Unsupported,
            msg: format!("{what} is not yet supported by nfrs"),
        }
    }
    /// A parameter problem printed without the program prefix ("Bad argument `x'").
    pub fn bare(msg: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::ParameterBare,
            msg: msg.into(),
        }
    }
    /// Any other failure (exit 1).
    pub fn other(msg: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Other,
            msg: msg.into(),
        }
    }
    /// The process exit status iptables uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Parameter | ErrorKind::ParameterBare | ErrorKind::Unsupported => 2,
            ErrorKind::Kernel(_) | ErrorKind::Other => 1,
        }
    }
    /// True for "not yet supported" refusals.
    pub fn is_unsupported(&self) -> bool {
        self.kind == ErrorKind::Unsupported
    }
}

impl Error {
    /// The exact stderr text iptables prints for this error when run as `prog`.
    pub fn render(&self, prog: &str) -> String {
        let try_help = format!("Try `{prog} -h' or '{prog} --help' for more information.\n");
        match self.kind {
            ErrorKind::Kernel(_) => format!("{prog}: {}\n", self.msg),
            ErrorKind::Parameter | ErrorKind::Unsupported => {
                format!("{prog} v1.8.9 (legacy): {}\n{try_help}", self.msg)
            }
            ErrorKind::ParameterBare => format!("{}\n{try_help}", self.msg),
            ErrorKind::Other => format!("{prog} v1.8.9 (legacy): {}\n", self.msg),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}
