//! A guest's stderr: it may write any amount over an instance's life, and the last
//! [`STDERR_KEPT`] bytes are kept so that a trap can be reported with the panic message the
//! guest wrote just before it. (wasmtime-wasi's `MemoryOutputPipe` closes once full, and a
//! Rust guest's `eprintln!` then panics: an instance that logged 16 KiB in all would trap
//! on every later write.)

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much of a guest's stderr is kept, in bytes.
pub(super) const STDERR_KEPT: usize = 16 << 10;

/// The kept end of a guest's stderr; clones share it.
#[derive(Clone, Default)]
pub(super) struct StderrTail(Arc<Mutex<Tail>>);

#[derive(Default)]
struct Tail {
    kept: VecDeque<u8>,
    /// Bytes written over the instance's life.
    written: u64,
}

impl StderrTail {
    /// A mark to read from with [`Self::since`]: the bytes written so far.
    pub(super) fn mark(&self) -> u64 {
        self.lock().written
    }

    /// What was written after `mark`, as far as it is still kept.
    pub(super) fn since(&self, mark: u64) -> Vec<u8> {
        let tail = self.lock();
        let new = usize::try_from(tail.written - mark).unwrap_or(usize::MAX);
        let skip = tail.kept.len().saturating_sub(new);
        tail.kept.iter().skip(skip).copied().collect()
    }

    fn push(&self, bytes: &[u8]) {
        let mut tail = self.lock();
        tail.written += bytes.len() as u64;
        let bytes = &bytes[bytes.len().saturating_sub(STDERR_KEPT)..];
        let overflow = (tail.kept.len() + bytes.len()).saturating_sub(STDERR_KEPT);
        tail.kept.drain(..overflow);
        tail.kept.extend(bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(STDERR_KEPT)
    }
}

#[async_trait::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_bytes_are_kept_and_read_from_a_mark() {
        let tail = StderrTail::default();
        tail.push(&[b'a'; STDERR_KEPT]);
        let mark = tail.mark();
        tail.push(b"panicked: boom");
        assert_eq!(tail.since(mark), b"panicked: boom");
        tail.push(&vec![b'z'; 3 * STDERR_KEPT]);
        assert_eq!(tail.since(mark).len(), STDERR_KEPT, "only the end is kept");
        assert_eq!(tail.mark(), (4 * STDERR_KEPT + 14) as u64);
        assert!(tail.since(tail.mark()).is_empty());
    }
}
