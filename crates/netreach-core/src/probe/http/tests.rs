//! Tests of the bounded response reader: whole, split and byte-at-a-time input.

use super::*;

fn limits() -> ParseLimits {
    ParseLimits::default()
}

/// Feeds all of `bytes` at once, then ends the stream if no response came yet.
fn parse_all(bytes: &[u8]) -> Result<ProbeResponse, ParseError> {
    let mut parser = ResponseParser::new(limits());
    match parser.feed(bytes)? {
        Some(response) => Ok(response),
        None => parser.finish(),
    }
}

/// Feeds one byte at a time; checks it gives the same result as feeding everything at once.
fn parse_bytewise(bytes: &[u8]) -> Result<ProbeResponse, ParseError> {
    let mut parser = ResponseParser::new(limits());
    let mut result = None;
    for b in bytes {
        match parser.feed(std::slice::from_ref(b)) {
            Ok(Some(response)) => {
                result = Some(Ok(response));
                break;
            }
            Ok(None) => {}
            Err(err) => {
                result = Some(Err(err));
                break;
            }
        }
    }
    let result = result.unwrap_or_else(|| parser.finish());
    assert_eq!(result, parse_all(bytes), "bytewise differs from whole");
    result
}

#[test]
fn no_content() {
    let r =
        parse_bytewise(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nDate: x\r\n\r\n").unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("DATE"), Some("x"));
    assert!(r.body_prefix.is_empty());
}

#[test]
fn completes_without_waiting_for_close() {
    let mut parser = ResponseParser::new(limits());
    let r = parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    assert_eq!(r.map(|r| r.status), Some(204));
    let mut parser = ResponseParser::new(limits());
    let r = parser
        .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(r.map(|r| r.body_prefix), Some(b"hello".to_vec()));
    // Input after the response is ignored, and finish returns the same response.
    assert_eq!(parser.feed(b"garbage").unwrap(), None);
    assert_eq!(parser.finish().unwrap().status, 200);
}

#[test]
fn content_length_body() {
    let r = parse_bytewise(
        b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\nMicrosoft Connect Testtrailing junk",
    )
    .unwrap();
    assert_eq!(r.body_prefix, b"Microsoft Connect Test");
}

#[test]
fn body_until_close() {
    let r = parse_bytewise(b"HTTP/1.0 200 OK\r\n\r\nsome body").unwrap();
    assert_eq!(r.body_prefix, b"some body");
}

#[test]
fn bare_line_feeds() {
    let r = parse_bytewise(b"HTTP/1.1 302 Found\nLocation: /login\n\n").unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/login"));
}

#[test]
fn chunked_body_is_dechunked() {
    let r = parse_bytewise(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;ext=1\r\nMicr\r\n12\r\nosoft Connect Test\r\n0\r\nTrailer: x\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.body_prefix, b"Microsoft Connect Test");
}

#[test]
fn chunked_wins_over_length() {
    let r = parse_bytewise(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.body_prefix, b"abc");
}

#[test]
fn bad_chunks() {
    for input in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
    ] {
        assert_eq!(parse_bytewise(input), Err(ParseError::BadFraming));
    }
    let mut long = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    long.extend(std::iter::repeat_n(b'x', 2 * MAX_CHUNK_LINE));
    assert_eq!(parse_bytewise(&long), Err(ParseError::BadFraming));
}

#[test]
fn conflicting_lengths() {
    assert_eq!(
        parse_bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc"),
        Err(ParseError::BadFraming)
    );
    assert_eq!(
        parse_bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        Err(ParseError::BadFraming)
    );
    let r = parse_bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc").unwrap();
    assert_eq!(r.body_prefix, b"abc");
}

#[test]
fn informational_responses_are_skipped() {
    let r = parse_bytewise(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n\
          HTTP/1.1 204 No Content\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("link"), None);
}

#[test]
fn endless_body_stops_at_prefix() {
    let mut parser = ResponseParser::new(limits());
    assert_eq!(parser.feed(b"HTTP/1.1 200 OK\r\n\r\n").unwrap(), None);
    let chunk = [b'x'; 1000];
    let mut fed = 0;
    let response = loop {
        fed += chunk.len();
        assert!(fed < 100_000, "parser never completed");
        if let Some(r) = parser.feed(&chunk).unwrap() {
            break r;
        }
    };
    assert_eq!(response.body_prefix.len(), limits().max_body_prefix);
    assert_eq!(fed, 5000);
}

#[test]
fn endless_chunked_body_stops_at_prefix() {
    let mut parser = ResponseParser::new(limits());
    assert_eq!(
        parser
            .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap(),
        None
    );
    let response = (0..10_000)
        .find_map(|_| parser.feed(b"1\r\ny\r\n").unwrap())
        .expect("parser never completed");
    assert_eq!(response.body_prefix, vec![b'y'; limits().max_body_prefix]);
}

#[test]
fn oversized_headers() {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..2000 {
        head.extend(format!("X-Filler-{i}: {}\r\n", "a".repeat(20)).bytes());
    }
    head.extend(b"\r\n");
    assert_eq!(parse_bytewise(&head), Err(ParseError::OversizedHeaders));

    // Many small headers: more than the header array holds.
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for _ in 0..100 {
        head.extend(b"A: b\r\n");
    }
    head.extend(b"\r\n");
    assert_eq!(parse_bytewise(&head), Err(ParseError::OversizedHeaders));

    // One endless header line without a line end.
    let mut parser = ResponseParser::new(limits());
    assert_eq!(parser.feed(b"HTTP/1.1 200 OK\r\nX: ").unwrap(), None);
    let err = (0..100)
        .find_map(|_| parser.feed(&[b'a'; 1000]).err())
        .expect("no error");
    assert_eq!(err, ParseError::OversizedHeaders);
    // The error sticks.
    assert_eq!(parser.feed(b"\r\n\r\n"), Err(ParseError::OversizedHeaders));
    assert_eq!(parser.finish(), Err(ParseError::OversizedHeaders));
}

#[test]
fn head_at_the_limit_is_accepted() {
    let mut head = b"HTTP/1.1 204 No Content\r\nX: ".to_vec();
    let pad = limits().max_head - head.len() - 4;
    head.extend(std::iter::repeat_n(b'a', pad));
    head.extend(b"\r\n\r\n");
    assert_eq!(head.len(), limits().max_head);
    assert_eq!(parse_bytewise(&head).map(|r| r.status), Ok(204));
}

#[test]
fn not_http() {
    // A TLS alert, as a TLS server sends to a plain-HTTP client.
    assert!(matches!(
        parse_bytewise(b"\x15\x03\x01\x00\x02\x02\x50\n"),
        Err(ParseError::BadHead(_))
    ));
    assert!(matches!(
        parse_bytewise(b"SSH-2.0-OpenSSH_9.2\r\n"),
        Err(ParseError::BadHead(_))
    ));
    assert!(matches!(
        parse_bytewise(b"HTTP/1.1 2x0 OK\r\n\r\n"),
        Err(ParseError::BadHead(_))
    ));
}

#[test]
fn truncated_and_empty() {
    assert_eq!(parse_bytewise(b""), Err(ParseError::Empty));
    assert_eq!(
        parse_bytewise(b"HTTP/1.1 200 O"),
        Err(ParseError::Truncated)
    );
    assert_eq!(
        parse_bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
        Err(ParseError::Truncated)
    );
    assert_eq!(
        parse_bytewise(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
        Err(ParseError::Truncated)
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A tiny deterministic generator: every split of a few nasty inputs, plus noise.
    let mut seed = 0x2545_f491_u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let alphabet =
        b"HTTP/1.1 200OK\r\n:;0123456789abcdefxX-Transfer-Encoding chunked Content-Length";
    for _ in 0..2000 {
        let len = (next() % 300) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if r % 7 == 0 {
                    (r >> 8) as u8
                } else {
                    alphabet[(r as usize >> 3) % alphabet.len()]
                }
            })
            .collect();
        let mut parser = ResponseParser::new(ParseLimits {
            max_head: 128,
            max_body_prefix: 16,
        });
        for piece in input.chunks(1 + (next() % 7) as usize) {
            if !matches!(parser.feed(piece), Ok(None)) {
                break;
            }
        }
        let _ = parser.finish();
    }
}
