//! One error type for every call: the gRPC status code, the server's message, and the details the
//! server reports in the trailing metadata.

use std::fmt;

use tonic::metadata::MetadataMap;
pub use tonic::Code;

/// A failed call: what the server (or the connection) answered.
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

// Boxed: a Result stays small on the success path.
#[derive(Debug, Clone)]
struct Inner {
    code: Code,
    message: String,
    metadata: MetadataMap,
}

/// The result of this crate's calls.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of this client's own (no server involved), e.g. a bad option.
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            code,
            message: message.into(),
            metadata: MetadataMap::new(),
        }))
    }

    /// The gRPC status code: `InvalidArgument`, `NotFound`, `AlreadyExists`, `Aborted`,
    /// `OutOfRange`, `ResourceExhausted`, `Unavailable` (safe to retry), `Unauthenticated`, ...
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// What went wrong and what to do, as the server says it.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The trailing metadata the server sent with the status.
    pub fn metadata(&self) -> &MetadataMap {
        &self.0.metadata
    }

    /// The session's actual length, for `Aborted` on an expected seq and `OutOfRange` past the
    /// session's end (`sessionstore-actual-length`).
    pub fn actual_length(&self) -> Option<u64> {
        self.number("sessionstore-actual-length")
    }

    /// The session's actual labels revision, for `Aborted` on an expected labels revision
    /// (`sessionstore-actual-labels-revision`).
    pub fn actual_labels_revision(&self) -> Option<u64> {
        self.number("sessionstore-actual-labels-revision")
    }

    /// The session's first kept seq, for `OutOfRange` below it after a trim
    /// (`sessionstore-first-seq`).
    pub fn first_seq(&self) -> Option<u64> {
        self.number("sessionstore-first-seq")
    }

    fn number(&self, key: &str) -> Option<u64> {
        self.0.metadata.get(key)?.to_str().ok()?.parse().ok()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sessionstore: {:?}: {}", self.0.code, self.0.message)
    }
}

impl std::error::Error for Error {}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        // A status with a source is tonic's own, for a failure of the connection (e.g. the TLS
        // handshake rejected mid-call), which tonic calls Unknown: it is Unavailable, as the other
        // clients report it, and the source says what failed.
        if let (Code::Unknown, Some(source)) = (status.code(), std::error::Error::source(&status)) {
            return Self::new(
                Code::Unavailable,
                format!("{}: {}", status.message(), describe(source)),
            );
        }
        Self(Box::new(Inner {
            code: status.code(),
            message: status.message().to_string(),
            metadata: status.metadata().clone(),
        }))
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let Inner {
            code,
            message,
            metadata,
        } = *error.0;
        tonic::Status::with_metadata(code, message, metadata)
    }
}

/// `error` and its sources, joined: tonic's transport errors say little at the top level.
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_server_reports_in_the_trailers() {
        let mut metadata = MetadataMap::new();
        metadata.insert("sessionstore-actual-length", "12".parse().unwrap());
        metadata.insert("sessionstore-first-seq", "3".parse().unwrap());
        let error = Error::from(tonic::Status::with_metadata(
            Code::Aborted,
            "expected seq 1, the session has 12 messages",
            metadata,
        ));
        assert_eq!(error.code(), Code::Aborted);
        assert_eq!(error.actual_length(), Some(12));
        assert_eq!(error.first_seq(), Some(3));
        assert_eq!(error.actual_labels_revision(), None);
        assert_eq!(
            error.to_string(),
            "sessionstore: Aborted: expected seq 1, the session has 12 messages"
        );
    }
}
