// A list of integers cannot be lent as values: a compile error at the field.
#[derive(cepheid_engine::Event)]
struct Batch {
    id: u64,
    sizes: Vec<i64>,
}

fn main() {}
