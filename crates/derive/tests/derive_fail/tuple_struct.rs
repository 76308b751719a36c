// Patterns read fields by name: a tuple struct has none.
#[derive(cepheid_engine::Event)]
struct Pair(u64, String);

fn main() {}
