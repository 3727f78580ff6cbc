//! Inputs and outputs: files or stdin/stdout; output files written next to their destination
//! and renamed into place only on success; a progress bar for large inputs on a terminal.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal as _, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use tempfile::NamedTempFile;

use crate::failure::{Code, Failure};

/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// An opened input and its length, if known.
pub(crate) struct Input {
    pub(crate) reader: Box<dyn Read>,
    pub(crate) len: Option<u64>,
    pub(crate) name: String,
}

/// Opens `path`, or stdin for `-`.
///
/// # Errors
/// An I/O error naming the file.
pub(crate) fn open_input(path: &str) -> anyhow::Result<Input> {
    if path == "-" {
        return Ok(Input {
            reader: Box::new(io::stdin().lock()),
            len: None,
            name: "stdin".into(),
        });
    }
    let file = File::open(path).with_context(|| format!("cannot open input {path}"))?;
    let len = file.metadata().ok().map(|m| m.len());
    Ok(Input {
        reader: Box::new(file),
        len,
        name: path.to_owned(),
    })
}

impl Input {
    /// Wraps the reader in a progress bar if stderr is a terminal and the input is large.
    /// Returns the bar to finish.
    pub(crate) fn with_progress(mut self, verb: &str) -> (Self, Option<ProgressBar>) {
        let Some(len) = self.len.filter(|len| *len >= PROGRESS_MIN_BYTES) else {
            return (self, None);
        };
        if !io::stderr().is_terminal() {
            return (self, None);
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(verb.to_owned());
        self.reader = Box::new(bar.wrap_read(self.reader));
        (self, Some(bar))
    }
}

/// Where output goes: stdout, or a temporary file renamed over the destination by
/// [`Output::commit`]. Dropped without `commit`, the temporary file is removed.
pub(crate) enum Output {
    Stdout(io::StdoutLock<'static>),
    File {
        writer: BufWriter<NamedTempFile>,
        dest: PathBuf,
    },
}

/// What an output is for: ciphertext is refused on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Ciphertext,
    Plaintext,
}

impl Output {
    /// Creates the output for `path` (`-` is stdout). An existing file is replaced only with
    /// `force`.
    ///
    /// # Errors
    /// Refusals (existing file, binary to a terminal) and I/O errors.
    pub(crate) fn create(path: &str, force: bool, kind: Kind) -> anyhow::Result<Self> {
        if path == "-" {
            let stdout = io::stdout();
            if kind == Kind::Ciphertext && stdout.is_terminal() {
                return Err(Failure::new(
                    Code::Usage,
                    "refusing to write ciphertext to a terminal",
                )
                .hint("write to a file with -o FILE, or redirect stdout")
                .into());
            }
            return Ok(Self::Stdout(stdout.lock()));
        }
        Self::create_file(Path::new(path), force)
    }

    /// A file output (never stdout).
    ///
    /// # Errors
    /// As [`Output::create`].
    pub(crate) fn create_file(dest: &Path, force: bool) -> anyhow::Result<Self> {
        if dest.exists() && !force {
            return Err(
                Failure::new(Code::Generic, format!("{} already exists", dest.display()))
                    .hint("pass --force to replace it")
                    .into(),
            );
        }
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".atrest-")
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(Self::File {
            writer: BufWriter::with_capacity(1 << 16, temp),
            dest: dest.to_owned(),
        })
    }

    /// Flushes, syncs and (for a file) renames the output into place.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn commit(self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(mut stdout) => stdout.flush().context("writing stdout"),
            Self::File { writer, dest } => {
                let temp = writer
                    .into_inner()
                    .map_err(io::IntoInnerError::into_error)
                    .with_context(|| format!("writing {}", dest.display()))?;
                temp.as_file()
                    .sync_all()
                    .with_context(|| format!("writing {}", dest.display()))?;
                temp.persist(&dest)
                    .map_err(|err| err.error)
                    .with_context(|| format!("renaming the output into {}", dest.display()))?;
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(stdout) => stdout.write(buf),
            Self::File { writer, .. } => writer.write(buf),
        }
    }

    /// The encryptor hands each segment and its tag over as one vectored write.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Stdout(stdout) => stdout.write_vectored(bufs),
            Self::File { writer, .. } => writer.write_vectored(bufs),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Stdout(stdout) => stdout.write_all(buf),
            Self::File { writer, .. } => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(stdout) => stdout.flush(),
            Self::File { writer, .. } => writer.flush(),
        }
    }
}
