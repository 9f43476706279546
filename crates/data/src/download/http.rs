//! HTTP downloads into `<file>.part` with resume: when a `.part` exists the request carries
//! `Range: bytes=<len>-` (RFC 9110 section 14); a `206` with a matching `Content-Range` is
//! appended, anything else (a `200` from a server that ignores ranges, a `416`, a different
//! offset) restarts from zero. A transfer that stops early keeps its `.part` and is retried.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use super::error::{DownloadError, ExpectedLen};
use crate::progress::{Progress, Task};

/// Downloads files over HTTP(S), honouring proxies from the environment.
pub struct Fetcher {
    agent: ureq::Agent,
    progress: Progress,
    retries: usize,
    retry_delay: Duration,
}

impl Fetcher {
    /// A fetcher with the given read timeout, retry count (after interruptions) and progress.
    pub fn new(
        timeout: Duration,
        retries: usize,
        retry_delay: Duration,
        progress: Progress,
    ) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30).min(timeout))
            .timeout_read(timeout)
            .try_proxy_from_env(true)
            .user_agent(concat!("arcface-rs/", env!("CARGO_PKG_VERSION")))
            .build();
        Fetcher {
            agent,
            progress,
            retries,
            retry_delay,
        }
    }

    /// Downloads `url` into `part` (resuming what is there); returns the bytes received now.
    pub fn fetch(&self, url: &str, part: &Path, label: &str) -> Result<u64, DownloadError> {
        let mut received = 0;
        let mut attempt = 0;
        loop {
            match self.fetch_once(url, part, label, &mut received) {
                Ok(()) => return Ok(received),
                Err(e @ DownloadError::Interrupted { .. }) if attempt < self.retries => {
                    attempt += 1;
                    tracing::warn!("{e}; retry {attempt} of {}", self.retries);
                    std::thread::sleep(self.retry_delay * attempt as u32);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn fetch_once(
        &self,
        url: &str,
        part: &Path,
        label: &str,
        received: &mut u64,
    ) -> Result<(), DownloadError> {
        let existing = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut request = self.agent.get(url);
        if existing > 0 {
            request = request.set("Range", &format!("bytes={existing}-"));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(416, _)) if existing > 0 => {
                // The .part is no prefix the server recognizes (or is already whole): start over.
                tracing::warn!("{url}: range {existing}- not satisfiable, restarting");
                remove_part(part)?;
                return self.fetch_once(url, part, label, received);
            }
            Err(ureq::Error::Status(status, r)) => {
                return Err(DownloadError::HttpStatus {
                    url: url.to_string(),
                    status,
                    text: super::text::escape(r.status_text(), 80),
                })
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(DownloadError::Network {
                    url: url.to_string(),
                    reason: super::text::escape(&transport_reason(&t), 300),
                })
            }
        };
        let length: Option<u64> = response
            .header("Content-Length")
            .and_then(|v| v.trim().parse().ok());
        let resumed = existing > 0
            && response.status() == 206
            && response.header("Content-Range").and_then(range_start) == Some(existing);
        if existing > 0 && !resumed {
            tracing::warn!(
                "{url}: server did not resume at byte {existing} (HTTP {}), restarting",
                response.status()
            );
        } else if resumed {
            tracing::info!("{url}: resuming at byte {existing}");
        }
        let offset = if resumed { existing } else { 0 };
        let total = length.map(|l| l + offset);
        let mut file = if resumed {
            OpenOptions::new().append(true).open(part)
        } else {
            File::create(part)
        }
        .map_err(|e| DownloadError::io("opening", part, e))?;

        let reporter = self
            .progress
            .start(Task::bytes(label, total).starting_at(offset));
        let mut reader = response.into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = offset;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    file.flush()
                        .map_err(|e| DownloadError::io("writing", part, e))?;
                    return Err(DownloadError::Interrupted {
                        url: url.to_string(),
                        part: part.to_path_buf(),
                        received: done,
                        expected: ExpectedLen(total),
                        reason: super::text::escape(&e.to_string(), 200),
                    });
                }
            };
            file.write_all(&buf[..n])
                .map_err(|e| DownloadError::io("writing", part, e))?;
            done += n as u64;
            *received += n as u64;
            reporter.inc(n as u64);
        }
        file.sync_all()
            .map_err(|e| DownloadError::io("writing", part, e))?;
        if let Some(t) = total {
            if done != t {
                return Err(DownloadError::Interrupted {
                    url: url.to_string(),
                    part: part.to_path_buf(),
                    received: done,
                    expected: ExpectedLen(total),
                    reason: "connection closed early".into(),
                });
            }
        }
        reporter.finish();
        Ok(())
    }
}

fn remove_part(part: &Path) -> Result<(), DownloadError> {
    match std::fs::remove_file(part) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(DownloadError::io("removing", part, e))
        }
        _ => Ok(()),
    }
}

/// The first byte of a `Content-Range: bytes <start>-<end>/<total>` header.
fn range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

/// The transport error's kind and innermost cause, without repeating the URL.
fn transport_reason(t: &ureq::Transport) -> String {
    let mut reason = t.kind().to_string();
    if let Some(m) = t.message() {
        reason.push_str(": ");
        reason.push_str(m);
    }
    let mut source = std::error::Error::source(t);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start_is_parsed() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
