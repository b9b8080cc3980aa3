//! The shared library's soname: CMake installs it as `libnetreach.so.0` (with `libnetreach.so`
//! beside it), whatever cargo calls the file it builds (`libnetreach_ffi.so`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnetreach.so.0");
    }
}
