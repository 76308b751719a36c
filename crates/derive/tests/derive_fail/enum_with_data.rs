// An enum reads as its variant's name, so variants cannot carry data.
#[derive(cepheid_engine::EventValue)]
enum Shape {
    Circle,
    Square { side: f64 },
}

fn main() {}
