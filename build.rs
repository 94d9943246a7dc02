//! Generates the gRPC service of the model server from proto/ when the `serve` feature is on.

fn main() {
    println!("cargo:rerun-if-changed=proto/grpc_inference.proto");
    #[cfg(feature = "serve")]
    {
        let fds = protox::compile(["proto/grpc_inference.proto"], ["proto"]).expect("proto/grpc_inference.proto parses");
        tonic_prost_build::configure()
            .build_client(false)
            .bytes(".")
            .compile_fds(fds)
            .expect("gRPC code generation");
    }
}
