//! The error type of mlops-devkit.

/// A local stand-in that could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A port could not be bound (in use, or not permitted).
    #[error("binding {what} on 127.0.0.1:{port}: {source}")]
    Bind { what: &'static str, port: u16, source: std::io::Error },

    /// The lake's directory could not be created or opened.
    #[error("opening {path} as a lake: {message}")]
    Directory { path: String, message: String },

    /// The bucket could not be created.
    #[error("creating bucket {bucket}: {message}")]
    Bucket { bucket: String, message: String },

    /// An invocation through the emulated Runtime API ended without an answer.
    #[error("the invocation was dropped before the function answered")]
    Dropped,
}

/// The result type of mlops-devkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;
