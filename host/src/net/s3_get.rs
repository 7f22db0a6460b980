//! Downloading one S3 object at start-up, as aws-for-fluent-bit's init process does it
//! (`init/fluent_bit_init_process.go`): the outputs' credential chain and timeouts, the
//! bucket's region asked for first (HeadBucket, then GetBucketLocation, whose empty answer
//! means us-east-1 and `EU` eu-west-1), one retry, a bound on the size. The endpoint moves
//! with the SDK's `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (path-style addressing then).
//!
//! Used for the `aws_fluent_bit_init_s3_N` files ([`crate::startup::init_files`]) and for plugins at
//! `s3://` paths ([`crate::plugin::source`]).

use super::aws_connection::{AwsConnectionConfig, AwsOverrides};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};

/// The region asked for a bucket's region when the task's region is unknown (as the init
/// process does).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Why an object could not be downloaded.
#[derive(Debug, PartialEq, Eq)]
pub enum S3GetError {
    /// Neither HeadBucket nor GetBucketLocation answered.
    BucketRegion {
        /// The SDK's error.
        detail: String,
    },
    /// The object does not exist.
    NoSuchKey,
    /// The object is larger than allowed.
    TooLarge,
    /// GetObject failed twice.
    Download {
        /// The bucket's region.
        region: String,
        /// The SDK's error.
        detail: String,
    },
}

/// S3 access with the outputs' credential chain, in the task's region.
pub struct S3Getter {
    sdk: aws_config::SdkConfig,
    path_style: bool,
}

impl S3Getter {
    /// A getter asking bucket regions in `task_region`, else `$AWS_REGION`, else us-east-1.
    pub async fn new(task_region: Option<&str>) -> Self {
        let region = task_region
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let connection = AwsConnectionConfig {
            region,
            ..Default::default()
        };
        let sdk = connection
            .sdk_config(&AwsOverrides::default())
            .await
            .expect("a non-empty region and no endpoint always validate");
        // A local endpoint (`http://127.0.0.1:…`) has no bucket subdomains.
        let path_style = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty()));
        S3Getter { sdk, path_style }
    }

    fn client(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let mut conf =
            aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(self.path_style);
        if let Some(region) = region {
            conf = conf.region(aws_sdk_s3::config::Region::new(region.to_string()));
        }
        aws_sdk_s3::Client::from_conf(conf.build())
    }

    /// The bytes of `s3://bucket/key`, at most `max_bytes` of them.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, S3GetError> {
        let region = self.bucket_region(bucket).await?;
        let client = self.client(Some(&region));
        let mut last = String::new();
        for attempt in 1..=2 {
            match get_bounded(&client, bucket, key, max_bytes).await {
                Ok(data) => return Ok(data),
                Err(GetFailure::Final(e)) => return Err(e),
                Err(GetFailure::Retry(detail)) => {
                    tracing::debug!(attempt, bucket, key, error = %detail, "S3 download failed");
                    last = detail;
                }
            }
        }
        Err(S3GetError::Download {
            region,
            detail: last,
        })
    }

    /// HeadBucket's region, else GetBucketLocation's (as the current init process).
    async fn bucket_region(&self, bucket: &str) -> Result<String, S3GetError> {
        let client = self.client(None);
        if let Ok(head) = client.head_bucket().bucket(bucket).send().await
            && let Some(region) = head.bucket_region().filter(|r| !r.is_empty())
        {
            return Ok(region.to_string());
        }
        let location = client
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| S3GetError::BucketRegion {
                detail: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(
            match location
                .location_constraint()
                .map(|c| c.as_str())
                .unwrap_or("")
            {
                "" => DEFAULT_REGION.to_string(),
                "EU" => "eu-west-1".to_string(),
                region => region.to_string(),
            },
        )
    }
}

/// Why one GetObject gave no bytes.
enum GetFailure {
    /// No point in trying again.
    Final(S3GetError),
    /// Worth a second attempt.
    Retry(String),
}

async fn get_bounded(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, GetFailure> {
    let mut response = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(response) => response,
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {
            return Err(GetFailure::Final(S3GetError::NoSuchKey));
        }
        Err(e) => return Err(GetFailure::Retry(DisplayErrorContext(&e).to_string())),
    };
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as i64)
    {
        return Err(GetFailure::Final(S3GetError::TooLarge));
    }
    let mut data = Vec::new();
    while let Some(chunk) = response
        .body
        .try_next()
        .await
        .map_err(|e| GetFailure::Retry(format!("reading the object: {e}")))?
    {
        if data.len() + chunk.len() > max_bytes {
            return Err(GetFailure::Final(S3GetError::TooLarge));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}
