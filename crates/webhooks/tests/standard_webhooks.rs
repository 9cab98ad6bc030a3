//! Voltplan's signatures checked by the Standard Webhooks reference library (Python
//! `standardwebhooks`, through `tests/verify_standard_webhooks.py`).
//!
//! Runs when `VOLTPLAN_TEST_PYTHON` names a Python that has the package
//! (`python3 -m venv v && v/bin/pip install -r .ci/requirements.txt`, then
//! `VOLTPLAN_TEST_PYTHON=v/bin/python`); otherwise it says it is skipped. CI sets it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::Utc;
use serde_json::json;
use voltplan_webhooks::sign::{SigningSecret, signature_header};

const MSG_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const BODY: &str = r#"{"type":"ev.plugged_in","timestamp":"2025-03-01T18:04:00Z","data":{"id":"01950000-0000-7000-8000-000000000001","battery_level":42}}"#;

/// One input line of the verifier script: the secrets to verify with, the headers, the body.
fn line(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp: i64,
    signature: &str,
    body: &str,
) -> String {
    json!({
        "secrets": secrets.iter().map(|s| s.expose()).collect::<Vec<_>>(),
        "headers": {
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp.to_string(),
            "webhook-signature": signature,
            "content-type": "application/json",
        },
        "body": body,
    })
    .to_string()
}

/// Runs the script on `lines` and returns its answers, one per line.
fn verify(python: &str, lines: &[String]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_standard_webhooks.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {python}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the verifier failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_reference_library_verifies_voltplans_signatures() {
    let Ok(python) = std::env::var("VOLTPLAN_TEST_PYTHON") else {
        eprintln!(
            "skipping the Standard Webhooks reference verifier: VOLTPLAN_TEST_PYTHON is not set (a Python with `standardwebhooks` from .ci/requirements.txt)"
        );
        return;
    };
    // The library refuses timestamps more than 5 minutes from its own clock: use the real time.
    let now = Utc::now().timestamp();
    let one = SigningSecret::generate();
    let new = SigningSecret::generate();
    let old = SigningSecret::generate();
    let stranger = SigningSecret::generate();

    let single = signature_header(&[&one], MSG_ID, now, BODY.as_bytes());
    let rotation = signature_header(&[&new, &old], MSG_ID, now, BODY.as_bytes());
    let tampered = BODY.replace("42", "43");
    let cases = [
        (
            "one secret",
            line(&[&one], MSG_ID, now, &single, BODY),
            true,
        ),
        (
            "rotation, the new secret",
            line(&[&new], MSG_ID, now, &rotation, BODY),
            true,
        ),
        (
            "rotation, the old secret",
            line(&[&old], MSG_ID, now, &rotation, BODY),
            true,
        ),
        (
            "rotation, each secret",
            line(&[&new, &old], MSG_ID, now, &rotation, BODY),
            true,
        ),
        (
            "tampered body",
            line(&[&one], MSG_ID, now, &single, &tampered),
            false,
        ),
        (
            "tampered body, rotation",
            line(&[&old], MSG_ID, now, &rotation, &tampered),
            false,
        ),
        (
            "another message id",
            line(&[&one], "msg_other", now, &single, BODY),
            false,
        ),
        (
            "another timestamp",
            line(&[&one], MSG_ID, now - 1, &single, BODY),
            false,
        ),
        (
            "a secret that did not sign",
            line(&[&stranger], MSG_ID, now, &rotation, BODY),
            false,
        ),
        (
            "one of two secrets did not sign",
            line(&[&new, &stranger], MSG_ID, now, &rotation, BODY),
            false,
        ),
    ];
    let lines: Vec<String> = cases.iter().map(|(_, line, _)| line.clone()).collect();
    let answers = verify(&python, &lines);
    assert_eq!(answers.len(), cases.len(), "{answers:?}");
    for ((name, _, valid), answer) in cases.iter().zip(&answers) {
        if *valid {
            assert_eq!(answer, "ok", "{name}");
        } else {
            assert!(answer.starts_with("fail: "), "{name}: {answer}");
        }
    }
    // The tampered body fails on its signature, not on something else.
    assert!(
        answers[4].contains("No matching signature found"),
        "{}",
        answers[4]
    );
}
