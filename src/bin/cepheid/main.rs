//! The `cepheid` command line (see `../shared/spec/cli.md`).

fn main() {
    eprintln!("cepheid: no command yet");
    std::process::exit(2);
}
