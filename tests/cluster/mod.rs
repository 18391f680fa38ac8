//! The rule suite on a Ballista cluster, over the lake on object storage (an S3-protocol server
//! each test starts on loopback).

mod ballista;
mod s3;
