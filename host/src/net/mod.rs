//! The router's clients of the network, shared by the outputs and by start-up: the HTTP(S)
//! client ([`http_client`]: rustls, the system's CA store, bounded time and size), the AWS SDK
//! configuration every AWS client is made from ([`aws_connection`]: region, endpoint, role,
//! credential chain), SigV4 signing of plain HTTP requests ([`sigv4`]) and the download of one
//! S3 object at start-up ([`s3_get`]: init files, plugins at `s3://` paths).
//!
//! A leaf: it imports nothing of the router but `ops` (error text).

pub mod aws_connection;
pub mod http_client;
pub mod s3_get;
pub mod sigv4;
