//! Compiles keel's transcription of etcd's gRPC API (`proto/`) into Rust. protox parses the
//! files, so no `protoc` is needed on the build machine. Servers serve; clients are for
//! `keel bench --protocol grpc` only (tests use the etcd-client crate as an independent
//! client, so a bug in keel's protos cannot hide behind a matching bug in its client).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/mvccpb/kv.proto",
        "proto/authpb/auth.proto",
        "proto/etcdserverpb/rpc.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
