//! Writes the `checkpoint` target's seeds to `corpus/checkpoint/`: the
//! folder a run of the target's configuration keeps (one per options
//! byte that changes what it holds), and the checkpoints of the formats
//! before this one (`tests/fixtures/checkpoints-*`), framed as the target
//! reads them. `cargo run --release --bin seed_checkpoint` in `fuzz/`.

#[path = "../common/runtime_input.rs"]
mod runtime_input;

#[path = "../common/checkpoint_input.rs"]
mod checkpoint_input;

use std::path::Path;

fn main() {
    let out = Path::new("corpus/checkpoint");
    std::fs::create_dir_all(out).expect("the corpus folder");
    let mut n = 0;
    let mut save = |data: Vec<u8>| {
        std::fs::write(out.join(format!("seed-{n}")), data).expect("a seed");
        n += 1;
    };
    for options in [0u8, 1, 2, 3, 4, 16] {
        let dir = checkpoint_input::folder();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the folder");
        let config = checkpoint_input::config(options, &dir);
        runtime_input::run(config, checkpoint_input::events());
        save(checkpoint_input::frame(&dir, options));
        let _ = std::fs::remove_dir_all(&dir);
    }
    // The formats before this one: each file under the target's name.
    for fixture in ["checkpoints-3c5a200", "checkpoints-c80fced"] {
        let root = Path::new("../tests/fixtures").join(fixture);
        let single = std::fs::read(root.join("single/ckpt/checkpoint")).expect("a fixture");
        let mut data = vec![0u8, 0];
        let len = u16::try_from(single.len()).expect("small");
        data.extend_from_slice(&len.to_le_bytes());
        data.extend_from_slice(&single);
        save(data);
        let workers = root.join("workers/ckpt");
        let epoch = std::fs::read_dir(&workers)
            .expect("a fixture")
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
            .expect("an epoch");
        let mut data = vec![0u8];
        for (name, index) in [("complete", 2u8), ("worker-0", 3), ("worker-1", 4)] {
            if let Ok(bytes) = std::fs::read(epoch.path().join(name)) {
                let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
                data.push(index);
                data.extend_from_slice(&len.to_le_bytes());
                data.extend_from_slice(&bytes[..usize::from(len)]);
            }
        }
        save(data);
    }
    println!("{n} seeds in {}", out.display());
}
