//! `keel-runtime-shim`: the host runtime's helper process (see `keel_runtime::host::shim`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    keel_runtime::host::shim::main(&args)
}
