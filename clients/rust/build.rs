//! Generates the gRPC client from proto/, the crate's copy of the repository's proto/ (protox
//! compiles it: no protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(["sessionstore/v1/session_store.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
