//! keel's integration tests, one binary.

mod cluster;
