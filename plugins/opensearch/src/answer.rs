//! What a Bulk API answer means, request and items.
//!
//! The request: a 2xx is read item by item (below); 413 splits the request; 408, 429 and 5xx
//! are retried (after `Retry-After`), as is a transport error; 401 and 403 fail for good with
//! what to check (the credentials, the SigV4 grant or the domain's access policy); any other
//! status fails for good with the start of the answer. Fluent Bit retries every status but 200
//! and 201 until `Retry_Limit`.
//!
//! The items of a 2xx answer with `"errors": true`, in the order of the request's documents:
//! 2xx delivered; 409 under `create` delivered (the document is there already: Fluent Bit
//! counts it as sent too); 429 and 5xx retried (only those documents are sent again); any other
//! status failed for good under the error's `type` (e.g. `mapper_parsing_exception`, counted
//! and dead-lettered with its `reason`). Fluent Bit retries the whole request when any item
//! failed with another status than 409 (`Trace_Error` prints the answer), which sends every
//! accepted document again.
//!
//! An answer the plugin cannot read (cut short by the router's `max_response_bytes`, or not
//! JSON) with `"errors": false` is delivered; otherwise the request is retried as a whole
//! (with `generate_id` or `id_key` and `create`, documents already stored answer 409 then).

use crate::config::WriteOperation;
use wasm_router_sdk::output::{Delivery, ItemOutcome, ItemResult, Response};
use wasm_router_sdk::serde_json::{self, Value};

/// The bytes of the answer quoted in a failure reason.
const QUOTED_BODY_BYTES: usize = 256;

/// What became of a request: the delivery of the request and, for a bulk answer with errors,
/// the result of each item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The request's delivery (for the items not reported).
    pub delivery: Delivery,
    /// Per-item results, in item order.
    pub items: Vec<ItemResult>,
    /// Items that failed for good, by reason (for the log).
    pub failed: usize,
    /// Items to send again.
    pub retried: usize,
}

impl Verdict {
    fn whole(delivery: Delivery) -> Verdict {
        Verdict {
            delivery,
            items: Vec::new(),
            failed: 0,
            retried: 0,
        }
    }
}

/// Classifies the answer to a bulk request. With per-item results, the request's delivery is
/// a retry: it applies only to documents the answer has no item for, which were not written.
pub fn classify(response: &Response<'_>, operation: WriteOperation) -> Verdict {
    if response.transport_error.is_some() || response.status == 0 {
        return Verdict::whole(Delivery::Retry(None));
    }
    let quoted = || response.body_text(QUOTED_BODY_BYTES);
    match response.status {
        200..=299 => {}
        413 => return Verdict::whole(Delivery::SplitAndRetry),
        408 | 429 | 500..=599 => return Verdict::whole(Delivery::Retry(response.retry_after_ms())),
        status @ (401 | 403) => {
            return Verdict::whole(Delivery::FailPermanent(format!(
                "HTTP {status}: the cluster refused the request's credentials: check the secret `basic_auth`, or for AWS the output's aws_sigv4 (region, service es or aoss, role) and the domain's access policy: {}",
                quoted()
            )));
        }
        status => {
            return Verdict::whole(Delivery::FailPermanent(format!(
                "HTTP {status}: {}",
                quoted()
            )));
        }
    }
    let parsed: Option<Value> = serde_json::from_slice(response.body).ok();
    let Some(answer) = parsed else {
        return if has_no_errors(response.body) {
            Verdict::whole(Delivery::Ok)
        } else {
            Verdict::whole(Delivery::Retry(None))
        };
    };
    if answer.get("errors").and_then(Value::as_bool) == Some(false) {
        return Verdict::whole(Delivery::Ok);
    }
    let Some(items) = answer.get("items").and_then(Value::as_array) else {
        return Verdict::whole(Delivery::Retry(None));
    };
    let mut verdict = Verdict::whole(Delivery::Retry(None));
    for (position, item) in items.iter().enumerate() {
        // `{"create": {"status": 201, …}}`: one action, its result.
        let Some(result) = item.as_object().and_then(|o| o.values().next()) else {
            continue;
        };
        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
        let outcome = match status {
            200..=299 => ItemOutcome::Delivered,
            409 if operation == WriteOperation::Create => ItemOutcome::Delivered,
            429 | 500..=599 | 0 => {
                verdict.retried += 1;
                ItemOutcome::Retry
            }
            _ => {
                verdict.failed += 1;
                let error = result.get("error");
                let text = |key: &str| {
                    error
                        .and_then(|e| e.get(key))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                ItemOutcome::Fail {
                    reason: text("type").unwrap_or_else(|| format!("item_http_{status}")),
                    detail: format!(
                        "item status {status}: {}",
                        text("reason")
                            .unwrap_or_else(|| error.map(Value::to_string).unwrap_or_default())
                    ),
                }
            }
        };
        verdict.items.push(ItemResult {
            position: position as u32,
            outcome,
        });
    }
    verdict
}

/// Whether a bulk answer that cannot be parsed (cut short) says `"errors":false` at its start.
fn has_no_errors(body: &[u8]) -> bool {
    let head = &body[..body.len().min(256)];
    let text: String = String::from_utf8_lossy(head)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    text.contains("\"errors\":false")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(status: u16, body: &str, _documents: usize) -> Verdict {
        classify(
            &Response {
                id: 1,
                status,
                headers: &[],
                body: body.as_bytes(),
                transport_error: None,
            },
            WriteOperation::Create,
        )
    }

    #[test]
    fn requests_without_errors_are_delivered_whole() {
        assert_eq!(
            verdict(
                200,
                r#"{"took":3,"errors":false,"items":[{"create":{"status":201}}]}"#,
                1
            ),
            Verdict::whole(Delivery::Ok)
        );
        // Cut short by the router's bound: the start still says there was no error.
        assert_eq!(
            verdict(
                200,
                r#"{"took":3, "errors": false, "items":[{"create":{"sta"#,
                1
            ),
            Verdict::whole(Delivery::Ok)
        );
        assert_eq!(
            verdict(
                200,
                r#"{"took":3,"errors":true,"items":[{"create":{"sta"#,
                1
            ),
            Verdict::whole(Delivery::Retry(None))
        );
    }

    #[test]
    fn items_are_delivered_retried_or_failed_on_their_own() {
        let body = r#"{"took":3,"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]"}}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"status":503}}
        ]}"#;
        let v = verdict(200, body, 5);
        // Only a document without an item would follow the request's retry.
        assert_eq!(v.delivery, Delivery::Retry(None));
        assert_eq!((v.failed, v.retried), (1, 2));
        let outcomes: Vec<_> = v
            .items
            .iter()
            .map(|i| (i.position, i.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (0, ItemOutcome::Delivered),
                (1, ItemOutcome::Retry),
                (
                    2,
                    ItemOutcome::Fail {
                        reason: "mapper_parsing_exception".into(),
                        detail: "item status 400: failed to parse field [n]".into()
                    }
                ),
                (3, ItemOutcome::Delivered),
                (4, ItemOutcome::Retry),
            ]
        );
        let v = verdict(
            200,
            r#"{"errors":true,"items":[{"index":{"status":400}}]}"#,
            3,
        );
        assert!(
            matches!(&v.items[0].outcome, ItemOutcome::Fail { reason, .. } if reason == "item_http_400")
        );
    }

    #[test]
    fn request_statuses() {
        assert_eq!(verdict(413, "", 1).delivery, Delivery::SplitAndRetry);
        assert_eq!(verdict(503, "", 1).delivery, Delivery::Retry(None));
        let Delivery::FailPermanent(why) = verdict(
            403,
            "{\"message\":\"The request signature we calculated does not match\"}",
            1,
        )
        .delivery
        else {
            panic!()
        };
        assert!(
            why.contains("aws_sigv4") && why.contains("signature"),
            "{why}"
        );
        assert!(
            matches!(verdict(404, "no such index", 1).delivery, Delivery::FailPermanent(w) if w.contains("404"))
        );
    }
}
