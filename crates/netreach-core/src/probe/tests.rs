//! Tests of classification: a table of responses and the verdicts they must give.

use super::*;

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> ProbeResponse {
    ProbeResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body_prefix: body.to_vec(),
    }
}

fn no_content() -> ProbeEndpoint {
    ProbeEndpoint::no_content("http://198.18.0.1/generate_204".parse().unwrap())
}

fn ncsi() -> ProbeEndpoint {
    ProbeEndpoint::body(
        "http://198.18.0.1/connecttest.txt".parse().unwrap(),
        "Microsoft Connect Test",
    )
}

fn portal(url: Option<&str>, reason: ProbeReason) -> ProbeVerdict {
    ProbeVerdict::Portal {
        url: url.map(str::to_owned),
        reason,
    }
}

fn limited(reason: ProbeReason) -> ProbeVerdict {
    ProbeVerdict::Limited { reason }
}

#[test]
fn classification_table() {
    let login = b"<html><head><title>Hotel WiFi login</title>" as &[u8];
    let cases: Vec<(ProbeEndpoint, ProbeResponse, ProbeVerdict)> = vec![
        (no_content(), response(204, &[], b""), ProbeVerdict::Full),
        (
            ncsi(),
            response(200, &[], b"Microsoft Connect Test"),
            ProbeVerdict::Full,
        ),
        (
            ncsi(),
            response(200, &[], b"Microsoft Connect Test\n"),
            ProbeVerdict::Full,
        ),
        (
            no_content(),
            response(302, &[("Location", "http://portal.test/login?x=1")], b""),
            portal(
                Some("http://portal.test/login?x=1"),
                ProbeReason::Redirect { status: 302 },
            ),
        ),
        (
            ncsi(),
            response(307, &[("location", "/login")], b""),
            portal(
                Some("http://198.18.0.1/login"),
                ProbeReason::Redirect { status: 307 },
            ),
        ),
        (
            no_content(),
            response(301, &[], b""),
            portal(None, ProbeReason::Redirect { status: 301 }),
        ),
        (
            no_content(),
            response(511, &[], login),
            portal(None, ProbeReason::NetworkAuthenticationRequired),
        ),
        (
            no_content(),
            response(511, &[("Location", "https://portal.test/")], login),
            portal(
                Some("https://portal.test/"),
                ProbeReason::NetworkAuthenticationRequired,
            ),
        ),
        (
            no_content(),
            response(200, &[], login),
            portal(None, ProbeReason::WrongContent { status: 200 }),
        ),
        (
            ncsi(),
            response(200, &[], login),
            portal(None, ProbeReason::WrongContent { status: 200 }),
        ),
        (
            ncsi(),
            response(200, &[], b"Microsoft"),
            portal(None, ProbeReason::WrongContent { status: 200 }),
        ),
        (
            ncsi(),
            response(204, &[], b""),
            portal(None, ProbeReason::WrongContent { status: 204 }),
        ),
        (
            no_content(),
            response(404, &[], b""),
            limited(ProbeReason::UnexpectedStatus { status: 404 }),
        ),
        (
            no_content(),
            response(502, &[], b""),
            limited(ProbeReason::UnexpectedStatus { status: 502 }),
        ),
        (
            no_content(),
            response(304, &[], b""),
            limited(ProbeReason::UnexpectedStatus { status: 304 }),
        ),
    ];
    for (endpoint, response, expected) in cases {
        assert_eq!(
            classify(&endpoint, &response),
            expected,
            "{endpoint} answered {response}"
        );
    }
}

#[test]
fn expected_header_proves_the_endpoint() {
    let endpoint = no_content().with_header("X-Probe", "netreach-test");
    assert_eq!(
        classify(
            &endpoint,
            &response(204, &[("x-probe", "netreach-test")], b"")
        ),
        ProbeVerdict::Full
    );
    assert_eq!(
        classify(&endpoint, &response(204, &[], b"")),
        portal(None, ProbeReason::WrongHeader)
    );
    assert_eq!(
        classify(&endpoint, &response(204, &[("X-Probe", "other")], b"")),
        portal(None, ProbeReason::WrongHeader)
    );
}

#[test]
fn portal_url_is_sanitised_and_bounded() {
    let long = format!("http://portal.test/{}", "a".repeat(10_000));
    let verdict = classify(&no_content(), &response(302, &[("Location", &long)], b""));
    assert_eq!(verdict.portal_url().map(str::len), Some(MAX_PORTAL_URL));
    let verdict = classify(
        &no_content(),
        &response(302, &[("Location", "http://portal.test/\u{1b}[31mx")], b""),
    );
    assert_eq!(verdict.portal_url(), Some("http://portal.test/[31mx"));
}

#[test]
fn parse_errors_map_to_reasons() {
    assert_eq!(
        ProbeReason::from(ParseError::OversizedHeaders),
        ProbeReason::OversizedHeaders
    );
    assert_eq!(
        ProbeReason::from(ParseError::Empty),
        ProbeReason::ConnectionClosed
    );
    assert_eq!(
        ProbeReason::from(ParseError::Truncated),
        ProbeReason::MalformedResponse
    );
}

#[test]
fn display_and_json() {
    let verdict = portal(
        Some("http://portal.test/"),
        ProbeReason::Redirect { status: 302 },
    );
    assert_eq!(
        verdict.to_string(),
        "portal at http://portal.test/ (redirected with 302)"
    );
    assert_eq!(ProbeVerdict::Full.to_string(), "full");
    let result = ProbeResult {
        interface: "eth0".into(),
        family: Family::Ipv6,
        verdict,
        latency: Duration::from_millis(12),
        remote: Some("[2001:db8::1]:80".parse().unwrap()),
    };
    assert_eq!(
        result.to_string(),
        "eth0 ipv6: portal at http://portal.test/ (redirected with 302) in 12 ms via [2001:db8::1]:80"
    );
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "interface": "eth0",
            "family": "ipv6",
            "verdict": "portal",
            "url": "http://portal.test/",
            "reason": { "kind": "redirect", "status": 302 },
            "latency_ms": 12.0,
            "remote": "[2001:db8::1]:80",
        })
    );
    let json = serde_json::to_value(ProbeVerdict::Limited {
        reason: ProbeReason::Timeout {
            phase: ProbePhase::Dns,
        },
    })
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "verdict": "limited", "reason": { "kind": "timeout", "phase": "dns" } })
    );
}
