//! What can go wrong with a base file.

use std::io;

/// An error from the base store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system failed (or the disk is full).
    #[error("base file {file}: {what}: {source}")]
    Io {
        file: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// Bytes that do not verify: a checksum, a page number, a layout, a key order. Never served.
    #[error("base file damaged at page {page}: {what}")]
    Corrupt { page: u64, what: String },
    /// A base file of a format this build does not read (written by another release).
    #[error(
        "base file {file} has format version {found}; this build reads version {supported} \
         only (open it with the release that wrote it)"
    )]
    Version { file: String, found: u32, supported: u32 },
    /// The file is not a Strata base file at all.
    #[error("{file} is not a Strata base file")]
    NotABase { file: String },
    /// A checkpoint's input broke the rules (keys not strictly increasing, a key or value too
    /// long); nothing was written.
    #[error("checkpoint input: {0}")]
    Input(String),
    /// An earlier checkpoint failed part-way; the file is as the last good checkpoint left it,
    /// but this handle writes no more (reopen to continue).
    #[error("an earlier checkpoint failed ({0}); reopen the base file to write again")]
    Stopped(String),
}

impl StoreError {
    pub(crate) fn io<'a>(
        file: &'a str,
        what: &'static str,
    ) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io { file: file.to_string(), what, source }
    }
}
