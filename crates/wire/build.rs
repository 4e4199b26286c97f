//! With the `host-link` feature: compiles `proto/labwright/v1/*.proto` with protox (no `protoc`
//! needed) and writes the file descriptor set next to the generated code so the server can offer
//! gRPC reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "host-link")]
    host_link()?;
    Ok(())
}

#[cfg(feature = "host-link")]
fn host_link() -> Result<(), Box<dyn std::error::Error>> {
    use std::path::PathBuf;
    // Read when the script runs, not when it is compiled: a build script compiled in another
    // checkout (a shared or seeded target directory) must still read this checkout's protos.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["labwright/v1/host_link.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("labwright_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
