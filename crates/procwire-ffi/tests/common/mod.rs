//! What the tests of the C ABI share: building the C, C++ and C# samples against the
//! library that cargo built for this test run.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The crate's directory.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    crate_dir().join("../../examples")
}

/// Where cargo put the `libprocwire_ffi.a` and `libprocwire_ffi.so` of this build: beside
/// the test binary, in the profile's `deps/` (whatever the target directory is called;
/// `cargo test` does not copy them up to the profile directory).
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's directory");
    assert!(
        deps.join("libprocwire_ffi.a").exists(),
        "no libprocwire_ffi.a beside the test binary in {}",
        deps.display()
    );
    deps.to_owned()
}

/// Where this test process puts what it builds (readable by every user, for the tests
/// that run a program as another one).
pub fn build_dir() -> PathBuf {
    procwire_testkit::shared_dir().to_path_buf()
}

/// The libraries a Rust static library needs from the system (`--print native-static-libs`).
const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Builds `source` (under `examples/`) with `compiler` (`g++` or `gcc`) and `flags`,
/// statically linked against `libprocwire_ffi.a`, once per test process; returns the
/// program.
pub fn build(compiler: &str, source: &str, flags: &[&str]) -> PathBuf {
    build_file(compiler, &examples_dir().join(source), flags)
}

/// As [`build`], for the source file at `path` (the benchmarks' C program).
pub fn build_file(compiler: &str, path: &Path, flags: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(program) = built.get(path) {
        return program.clone();
    }
    let source = path.display();
    let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
    let program = build_dir().join(stem);
    let output = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg("-I")
        .arg(path.parent().unwrap())
        .arg(path)
        .arg("-o")
        .arg(&program)
        .arg(library_dir().join("libprocwire_ffi.a"))
        .args(NATIVE_LIBS)
        .output()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} failed on {source}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    built.insert(path.to_owned(), program.clone());
    program
}

/// Builds a C++17 sample of `examples/cpp/`.
pub fn cpp(name: &str) -> PathBuf {
    build(
        "g++",
        &format!("cpp/{name}.cpp"),
        &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1"],
    )
}

/// Builds the C11 program `examples/c/procwire_c.c`.
pub fn c_program() -> PathBuf {
    build(
        "gcc",
        "c/procwire_c.c",
        &[
            "-std=c11",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O2",
        ],
    )
}

/// Builds a C# sample of `examples/csharp/` (with its P/Invoke declarations,
/// `Procwire.cs`) with Mono's `mcs`, once per test process.
pub fn csharp(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(program) = built.get(name) {
        return program.clone();
    }
    let dir = examples_dir().join("csharp");
    let program = build_dir().join(format!("{name}.exe"));
    let output = Command::new("mcs")
        .arg(format!("-out:{}", program.display()))
        .arg(dir.join(format!("{name}.cs")))
        .arg(dir.join("Procwire.cs"))
        .output()
        .unwrap_or_else(|e| panic!("run mcs (apt-get install mono-mcs): {e}"));
    assert!(
        output.status.success(),
        "mcs failed on {name}.cs:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    built.insert(name.to_owned(), program.clone());
    program
}

/// A command that runs the C# program `exe` with Mono, finding `libprocwire_ffi.so` of
/// this build.
pub fn mono(exe: &Path) -> Command {
    let mut cmd = Command::new("mono");
    cmd.arg(exe).env("LD_LIBRARY_PATH", library_dir());
    cmd
}
