//! Generates the gRPC client from the repository's proto/ (protox compiles it: no protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "../../../proto";
    let descriptors = protox::compile(["sessionstore/v1/session_store.proto"], [proto_dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={proto_dir}");
    Ok(())
}
