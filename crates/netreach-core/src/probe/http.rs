//! An incremental, bounded reader of one HTTP/1.x response: pure, fed bytes as they arrive.
//!
//! The status line and headers are parsed by `httparse`; this module only frames them (it
//! re-parses the buffered head whenever a line ends) and then collects a bounded prefix of the
//! body, de-chunked when the body is chunked. Memory is bounded whatever the peer sends: the head
//! by [`ParseLimits::max_head`], the body by [`ParseLimits::max_body_prefix`], a chunk-size line
//! by [`MAX_CHUNK_LINE`]. Once the prefix is full the response is complete, so an endless body
//! costs nothing more than the prefix. Nothing here panics on any input.

use std::fmt;

use httparse::{EMPTY_HEADER, ParserConfig, Status};

/// The longest chunk-size line (size, extensions and line end) accepted.
pub const MAX_CHUNK_LINE: usize = 1024;
/// The most headers one response may have; more count as oversized.
const MAX_HEADERS: usize = 64;

/// How much of a response is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// The most bytes of status line and headers (including skipped `1xx` responses).
    pub max_head: usize,
    /// The most body bytes kept; once this many have arrived the response is complete.
    pub max_body_prefix: usize,
}

impl Default for ParseLimits {
    /// 16 KiB of head, 4 KiB of body.
    fn default() -> ParseLimits {
        ParseLimits {
            max_head: 16 * 1024,
            max_body_prefix: 4 * 1024,
        }
    }
}

/// A parsed response: what [`crate::probe::classify`] looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProbeResponse {
    /// The status code.
    pub status: u16,
    /// The headers in order, names as sent, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The first bytes of the (de-chunked) body, at most [`ParseLimits::max_body_prefix`].
    pub body_prefix: Vec<u8>,
}

impl ProbeResponse {
    /// The first header with this name, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of headers with this name, compared without regard to case.
    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for ProbeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} with {} headers and {} body bytes",
            self.status,
            self.headers.len(),
            self.body_prefix.len()
        )
    }
}

/// Why the bytes are not a usable HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The status line and headers exceed [`ParseLimits::max_head`] or 64 headers. A genuine
    /// check endpoint answers with a few hundred bytes; something else is answering.
    #[error("response headers too large")]
    OversizedHeaders,
    /// `httparse` rejected the status line or a header: the peer does not speak HTTP/1.x
    /// (a TLS server on a plain-HTTP URL, say).
    #[error("malformed response head: {0}")]
    BadHead(httparse::Error),
    /// `Content-Length` values disagree or are not numbers, or a chunk-size line is invalid.
    #[error("malformed response framing")]
    BadFraming,
    /// The connection ended in the middle of the head or of a body of announced length.
    #[error("response truncated")]
    Truncated,
    /// The connection ended before the first byte of a response.
    #[error("connection closed without a response")]
    Empty,
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`: this many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// Neither: the body ends when the connection does.
    UntilClose,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line (buffered in `ResponseParser::buf`).
    Size,
    /// Reading chunk data: this many bytes to go.
    Data(u64),
    /// Skipping the line end after chunk data (buffered).
    DataEnd,
}

/// Where the parser is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading the head, buffered in `buf`.
    Head,
    /// Reading the body of this response.
    Body(ProbeResponse, Framing),
    /// A response was returned; further input is ignored.
    Done(ProbeResponse),
    /// An error was returned; it is returned again.
    Failed(ParseError),
}

/// Reads one HTTP/1.x response from bytes fed as they come.
///
/// Call [`feed`](Self::feed) with each read; it returns the response as soon as it is complete
/// (end of a body of known length, last chunk, or a full body prefix). At end of stream call
/// [`finish`](Self::finish). Both return the same error again once one occurred.
///
/// # Examples
///
/// ```
/// use netreach_core::probe::{ParseLimits, ResponseParser};
///
/// let mut parser = ResponseParser::new(ParseLimits::default());
/// assert_eq!(parser.feed(b"HTTP/1.1 204 No Con")?, None);
/// let response = parser.feed(b"tent\r\nServer: x\r\n\r\n")?.expect("complete");
/// assert_eq!(response.status, 204);
/// assert_eq!(response.header("server"), Some("x"));
/// # Ok::<(), netreach_core::probe::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResponseParser {
    limits: ParseLimits,
    state: State,
    /// The head so far, or a partial chunk-size line or chunk-data line end.
    buf: Vec<u8>,
    /// Head bytes of skipped `1xx` responses, counted against `max_head`.
    head_used: usize,
}

impl ResponseParser {
    /// A parser for one response.
    pub fn new(limits: ParseLimits) -> ResponseParser {
        ResponseParser {
            limits,
            state: State::Head,
            buf: Vec::new(),
            head_used: 0,
        }
    }

    /// Feeds the next bytes; returns the response once it is complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<ProbeResponse>, ParseError> {
        let result = self.feed_inner(bytes);
        if let Err(err) = result {
            self.state = State::Failed(err);
            self.buf = Vec::new();
        }
        result
    }

    /// The stream ended: returns the response if it is complete or its body ends with the stream.
    pub fn finish(&mut self) -> Result<ProbeResponse, ParseError> {
        match &self.state {
            State::Done(response) | State::Body(response, Framing::UntilClose) => {
                let response = response.clone();
                self.state = State::Done(response.clone());
                Ok(response)
            }
            State::Failed(err) => Err(*err),
            State::Head if self.buf.is_empty() && self.head_used == 0 => Err(ParseError::Empty),
            State::Head | State::Body(..) => {
                self.state = State::Failed(ParseError::Truncated);
                Err(ParseError::Truncated)
            }
        }
    }

    fn feed_inner(&mut self, mut input: &[u8]) -> Result<Option<ProbeResponse>, ParseError> {
        loop {
            match &self.state {
                State::Done(_) => return Ok(None),
                State::Failed(err) => return Err(*err),
                State::Body(..) => return self.body(input),
                State::Head => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let used = self.head_used + self.buf.len();
                    let room = self.limits.max_head.saturating_sub(used);
                    if room == 0 {
                        return Err(ParseError::OversizedHeaders);
                    }
                    let (take, rest) = input.split_at(room.min(input.len()));
                    input = rest;
                    self.buf.extend_from_slice(take);
                    // A head ends with a line end: only then can a parse complete or fail.
                    if take.contains(&b'\n') {
                        if let Some(pending) = self.parse_heads()? {
                            if let Some(response) = self.body(&pending)? {
                                return Ok(Some(response));
                            }
                        }
                    }
                    let still_head = matches!(self.state, State::Head);
                    if still_head && self.head_used + self.buf.len() >= self.limits.max_head {
                        return Err(ParseError::OversizedHeaders);
                    }
                }
            }
        }
    }

    /// Feeds body bytes; on completion moves to `Done` and returns the response.
    fn body(&mut self, data: &[u8]) -> Result<Option<ProbeResponse>, ParseError> {
        let State::Body(response, framing) = &mut self.state else {
            return Ok(None);
        };
        if !body_step(response, framing, &mut self.buf, data, self.limits)? {
            return Ok(None);
        }
        let response = std::mem::take(response);
        self.buf = Vec::new();
        self.state = State::Done(response.clone());
        Ok(Some(response))
    }

    /// Parses the buffered head, skipping informational responses. On a complete final response
    /// moves to `Body` and returns the bytes that followed the head.
    fn parse_heads(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        loop {
            let mut headers = [EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut headers);
            let consumed = match ParserConfig::default()
                .allow_spaces_after_header_name_in_responses(true)
                .allow_obsolete_multiline_headers_in_responses(true)
                .allow_multiple_spaces_in_response_status_delimiters(true)
                .parse_response(&mut parsed, &self.buf)
            {
                Ok(Status::Complete(n)) => n,
                Ok(Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => return Err(ParseError::OversizedHeaders),
                Err(err) => return Err(ParseError::BadHead(err)),
            };
            let status = parsed
                .code
                .ok_or(ParseError::BadHead(httparse::Error::Status))?;
            let response = ProbeResponse {
                status,
                headers: parsed
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_owned();
                        (h.name.to_owned(), value)
                    })
                    .collect(),
                body_prefix: Vec::new(),
            };
            let rest = self.buf.split_off(consumed);
            self.head_used += consumed;
            self.buf = rest;
            // 100 Continue, 102 Processing, 103 Early Hints: the real head follows.
            if matches!(status, 100 | 102 | 103) {
                if self.buf.contains(&b'\n') {
                    continue;
                }
                return Ok(None);
            }
            let framing = framing(&response)?;
            self.state = State::Body(response, framing);
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
    }
}

/// Reads the framing from the headers (RFC 9112 section 6.3, for a response to `GET`).
fn framing(response: &ProbeResponse) -> Result<Framing, ParseError> {
    if matches!(response.status, 101 | 204 | 304) {
        return Ok(Framing::Length(0));
    }
    let codings = response
        .headers_named("transfer-encoding")
        .collect::<Vec<_>>();
    if !codings.is_empty() {
        let last = codings
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        return Ok(match last {
            Some(c) if c.eq_ignore_ascii_case("chunked") => Framing::Chunked(Chunk::Size),
            _ => Framing::UntilClose,
        });
    }
    let mut length = None;
    for value in response
        .headers_named("content-length")
        .flat_map(|v| v.split(','))
    {
        let n: u64 = value.trim().parse().map_err(|_| ParseError::BadFraming)?;
        if length.is_some_and(|l| l != n) {
            return Err(ParseError::BadFraming);
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Consumes body bytes from `input`; returns whether the response is complete (body ended or
/// prefix full), in which case the rest of `input` is of no interest. `line` buffers partial
/// chunk-size lines.
fn body_step(
    response: &mut ProbeResponse,
    framing: &mut Framing,
    line: &mut Vec<u8>,
    mut input: &[u8],
    limits: ParseLimits,
) -> Result<bool, ParseError> {
    let keep = |response: &mut ProbeResponse, data: &[u8]| {
        let room = limits
            .max_body_prefix
            .saturating_sub(response.body_prefix.len());
        response
            .body_prefix
            .extend_from_slice(&data[..room.min(data.len())]);
        response.body_prefix.len() >= limits.max_body_prefix
    };
    loop {
        if response.body_prefix.len() >= limits.max_body_prefix {
            return Ok(true);
        }
        match framing {
            Framing::Length(0) => return Ok(true),
            _ if input.is_empty() => return Ok(false),
            Framing::UntilClose => {
                return Ok(keep(response, input));
            }
            Framing::Length(remaining) => {
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                keep(response, &input[..n]);
                *remaining -= n as u64;
                input = &input[n..];
            }
            Framing::Chunked(Chunk::Data(remaining)) => {
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                keep(response, &input[..n]);
                *remaining -= n as u64;
                input = &input[n..];
                if *remaining == 0 {
                    *framing = Framing::Chunked(Chunk::DataEnd);
                }
            }
            Framing::Chunked(chunk @ (Chunk::Size | Chunk::DataEnd)) => {
                // Buffer up to one line end, then parse it.
                let end = input.iter().position(|&b| b == b'\n');
                let take = end.map_or(input.len(), |i| i + 1);
                if line.len() + take > MAX_CHUNK_LINE {
                    return Err(ParseError::BadFraming);
                }
                line.extend_from_slice(&input[..take]);
                input = &input[take..];
                if end.is_none() {
                    continue;
                }
                if *chunk == Chunk::DataEnd {
                    if line.as_slice() != b"\r\n" && line.as_slice() != b"\n" {
                        return Err(ParseError::BadFraming);
                    }
                    line.clear();
                    *framing = Framing::Chunked(Chunk::Size);
                    continue;
                }
                let size = match httparse::parse_chunk_size(line) {
                    Ok(Status::Complete((_, size))) => size,
                    Ok(Status::Partial) | Err(_) => return Err(ParseError::BadFraming),
                };
                line.clear();
                if size == 0 {
                    // The last chunk; trailers are of no interest.
                    *framing = Framing::Length(0);
                } else {
                    *framing = Framing::Chunked(Chunk::Data(size));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
