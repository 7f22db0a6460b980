//! Retry classification of AWS SDK errors, one explicit table for all three outputs.
//!
//! Retried (with backoff and jitter, by the output runner): throttling
//! (`ThrottlingException`, Firehose's `ServiceUnavailableException`, S3 `SlowDown`, HTTP 429),
//! server errors (5xx, `InternalFailure`, …), timeouts and network errors, and credential or
//! permission failures (task-role credentials rotate and IAM can be fixed while we wait — Fluent
//! Bit retries these too). Not retried: requests the service called invalid (other 4xx).
//! `ResourceNotFound` and `AlreadyExists` are their own classes, because CloudWatch answers
//! them by creating the group or stream.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::time::Duration;

/// What kind of failure an SDK error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service asked us to slow down.
    Throttled,
    /// A 5xx or an internal error on the service side.
    ServerError,
    /// The attempt timed out.
    Timeout,
    /// Connecting, sending or reading failed.
    Network,
    /// Credentials could not be loaded, expired, or were refused.
    Credentials,
    /// The group, stream, bucket, upload … does not exist.
    ResourceNotFound,
    /// The resource to create exists already.
    AlreadyExists,
    /// The service rejected the request itself; sending it again cannot help.
    InvalidRequest,
}

impl ErrorClass {
    /// Whether sending the same request again later may succeed.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            ErrorClass::InvalidRequest | ErrorClass::ResourceNotFound | ErrorClass::AlreadyExists
        )
    }

    /// The metric label (`component_errors_total{reason}`).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorClass::Throttled => "throttled",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Network => "network_error",
            ErrorClass::Credentials => "credentials_error",
            ErrorClass::ResourceNotFound => "resource_not_found",
            ErrorClass::AlreadyExists => "already_exists",
            ErrorClass::InvalidRequest => "invalid_request",
        }
    }
}

/// Error codes that mean "slow down" across CloudWatch Logs, Firehose, S3 and STS.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "OperationAbortedException",
    // Kinesis Data Streams: the stream's KMS key is being called too often.
    "KMSThrottlingException",
    // Firehose: "the service is unavailable … throughput limits may have been exceeded".
    "ServiceUnavailableException",
];

/// Codes of transient service-side failures.
const SERVER_ERROR_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Codes of credential and permission failures.
const CREDENTIALS_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "RequestExpired",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAccessKeyId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchBucket",
    "NoSuchUpload",
    "NoSuchKey",
];
const ALREADY_EXISTS_CODES: &[&str] =
    &["ResourceAlreadyExistsException", "BucketAlreadyOwnedByYou"];

/// One failed SDK call, classified, with what the logs and metrics need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdkFailure {
    /// The class that decides what happens next.
    pub class: ErrorClass,
    /// The service's error code, when it sent one.
    pub code: Option<String>,
    /// A one-line description for the router's log.
    pub message: String,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// How long the service asked us to wait (`Retry-After`), if it did.
    pub retry_after: Option<Duration>,
}

impl SdkFailure {
    /// Classify an SDK error of any operation.
    pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> SdkFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::ConstructionFailure(_) => {
                let message = crate::ops::logging::error_chain(err);
                // The orchestrator reports a credential chain that found nothing (or failed to
                // reach IMDS/STS) here.
                let class = if message.to_ascii_lowercase().contains("credential")
                    || message.contains("identity")
                {
                    ErrorClass::Credentials
                } else {
                    ErrorClass::InvalidRequest
                };
                SdkFailure {
                    class,
                    code: None,
                    message,
                    status: None,
                    retry_after: None,
                }
            }
            SdkError::TimeoutError(_) => {
                SdkFailure::bare(ErrorClass::Timeout, crate::ops::logging::error_chain(err))
            }
            SdkError::DispatchFailure(d) => {
                let class = if d.is_timeout() {
                    ErrorClass::Timeout
                } else {
                    ErrorClass::Network
                };
                SdkFailure::bare(class, crate::ops::logging::error_chain(err))
            }
            SdkError::ResponseError(r) => {
                let status = r.raw().status().as_u16();
                SdkFailure {
                    class: class_of_status(status).unwrap_or(ErrorClass::Network),
                    code: None,
                    message: format!(
                        "unreadable response (HTTP {status}): {}",
                        crate::ops::logging::error_chain(err)
                    ),
                    status: Some(status),
                    retry_after: retry_after(r.raw()),
                }
            }
            SdkError::ServiceError(s) => {
                let status = s.raw().status().as_u16();
                let code = s.err().code().map(str::to_string);
                let class = code
                    .as_deref()
                    .and_then(class_of_code)
                    .or_else(|| class_of_status(status))
                    .unwrap_or(ErrorClass::InvalidRequest);
                let message = match (s.err().code(), s.err().message()) {
                    (Some(c), Some(m)) => format!("{c}: {m} (HTTP {status})"),
                    (Some(c), None) => format!("{c} (HTTP {status})"),
                    _ => format!("{} (HTTP {status})", crate::ops::logging::error_chain(err)),
                };
                SdkFailure {
                    class,
                    code,
                    message,
                    status: Some(status),
                    retry_after: retry_after(s.raw()),
                }
            }
            _ => SdkFailure::bare(ErrorClass::Network, crate::ops::logging::error_chain(err)),
        }
    }

    fn bare(class: ErrorClass, message: String) -> SdkFailure {
        SdkFailure {
            class,
            code: None,
            message,
            status: None,
            retry_after: None,
        }
    }

    /// Whether the call may succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        self.class.is_retryable()
    }

    /// Whether the service said the error code `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl std::fmt::Display for SdkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The class an error code alone decides.
pub fn class_of_code(code: &str) -> Option<ErrorClass> {
    if ALREADY_EXISTS_CODES.contains(&code) {
        Some(ErrorClass::AlreadyExists)
    } else if NOT_FOUND_CODES.contains(&code) {
        Some(ErrorClass::ResourceNotFound)
    } else if THROTTLING_CODES.contains(&code) {
        Some(ErrorClass::Throttled)
    } else if SERVER_ERROR_CODES.contains(&code) {
        Some(ErrorClass::ServerError)
    } else if CREDENTIALS_CODES.contains(&code) {
        Some(ErrorClass::Credentials)
    } else {
        None
    }
}

/// The class an HTTP status alone decides (for responses without a known code).
pub fn class_of_status(status: u16) -> Option<ErrorClass> {
    match status {
        429 => Some(ErrorClass::Throttled),
        408 => Some(ErrorClass::Timeout),
        401 | 403 => Some(ErrorClass::Credentials),
        500..=599 => Some(ErrorClass::ServerError),
        _ => None,
    }
}

fn retry_after(raw: &HttpResponse) -> Option<Duration> {
    let secs: u64 = raw.headers().get("retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(300)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::put_log_events::PutLogEventsError;
    use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from("{}"))
    }

    fn service_error(code: &str, status: u16) -> SdkError<PutLogEventsError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("details")
            .build();
        SdkError::service_error(PutLogEventsError::generic(meta), response(status))
    }

    #[test]
    fn throttling_is_retried_under_every_spelling() {
        for code in [
            "ThrottlingException",
            "Throttling",
            "SlowDown",
            "ServiceUnavailableException",
            "TooManyRequestsException",
        ] {
            let f = SdkFailure::classify(&service_error(code, 400));
            assert_eq!(f.class, ErrorClass::Throttled, "{code}");
            assert!(f.is_retryable());
            assert_eq!(f.code.as_deref(), Some(code));
        }
        let f = SdkFailure::classify(&service_error("SomethingNew", 429));
        assert_eq!(f.class, ErrorClass::Throttled);
    }

    #[test]
    fn server_errors_and_unknown_5xx_are_retried() {
        assert_eq!(
            SdkFailure::classify(&service_error("InternalFailure", 500)).class,
            ErrorClass::ServerError
        );
        assert_eq!(
            SdkFailure::classify(&service_error("Weird", 503)).class,
            ErrorClass::ServerError
        );
        let unreadable: SdkError<PutLogEventsError, HttpResponse> =
            SdkError::response_error("not json", response(502));
        let f = SdkFailure::classify(&unreadable);
        assert_eq!((f.class, f.status), (ErrorClass::ServerError, Some(502)));
        assert!(f.is_retryable());
    }

    #[test]
    fn network_and_timeouts_are_retried() {
        let io: SdkError<PutLogEventsError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection reset by peer".into()));
        let f = SdkFailure::classify(&io);
        assert_eq!(f.class, ErrorClass::Network);
        assert!(f.message.contains("connection reset"), "{}", f.message);
        let t: SdkError<PutLogEventsError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::timeout("slow".into()));
        assert_eq!(SdkFailure::classify(&t).class, ErrorClass::Timeout);
        let t: SdkError<PutLogEventsError, HttpResponse> =
            SdkError::timeout_error("attempt timeout");
        assert_eq!(SdkFailure::classify(&t).class, ErrorClass::Timeout);
    }

    #[test]
    fn credentials_and_permissions_are_retried() {
        for code in [
            "ExpiredTokenException",
            "AccessDeniedException",
            "UnrecognizedClientException",
        ] {
            let f = SdkFailure::classify(&service_error(code, 400));
            assert_eq!(f.class, ErrorClass::Credentials, "{code}");
            assert!(f.is_retryable());
        }
        let no_creds: SdkError<PutLogEventsError, HttpResponse> =
            SdkError::construction_failure("failed to load credentials: no providers in chain");
        assert_eq!(
            SdkFailure::classify(&no_creds).class,
            ErrorClass::Credentials
        );
    }

    #[test]
    fn invalid_requests_not_found_and_exists_are_not_retried() {
        let f = SdkFailure::classify(&service_error("InvalidParameterException", 400));
        assert_eq!(f.class, ErrorClass::InvalidRequest);
        assert!(!f.is_retryable());
        assert!(
            f.message
                .contains("InvalidParameterException: details (HTTP 400)"),
            "{}",
            f.message
        );
        let f = SdkFailure::classify(&service_error("ResourceNotFoundException", 400));
        assert_eq!(f.class, ErrorClass::ResourceNotFound);
        assert!(f.has_code("ResourceNotFoundException"));
        let f = SdkFailure::classify(&service_error("ResourceAlreadyExistsException", 400));
        assert_eq!(f.class, ErrorClass::AlreadyExists);
        let bad_build: SdkError<PutLogEventsError, HttpResponse> =
            SdkError::construction_failure("missing field");
        assert_eq!(
            SdkFailure::classify(&bad_build).class,
            ErrorClass::InvalidRequest
        );
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let meta = ErrorMetadata::builder()
            .code("ServiceUnavailableException")
            .build();
        let mut raw = response(503);
        raw.headers_mut().insert("retry-after", "7");
        let err: SdkError<PutRecordBatchError, HttpResponse> =
            SdkError::service_error(PutRecordBatchError::generic(meta), raw);
        assert_eq!(
            SdkFailure::classify(&err).retry_after,
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn every_class_has_a_distinct_reason() {
        let all = [
            ErrorClass::Throttled,
            ErrorClass::ServerError,
            ErrorClass::Timeout,
            ErrorClass::Network,
            ErrorClass::Credentials,
            ErrorClass::ResourceNotFound,
            ErrorClass::AlreadyExists,
            ErrorClass::InvalidRequest,
        ];
        let reasons: std::collections::HashSet<_> = all.iter().map(|c| c.reason()).collect();
        assert_eq!(reasons.len(), all.len());
    }
}
